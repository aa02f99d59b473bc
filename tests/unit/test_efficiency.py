"""`plksr bench` results (benchmark.Result: model id apart from its label) and their rendering
(evaluation.efficiency: the table with GEMM line and ratios, the latency-vs-PSNR plot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plksr_arch.benchmark import Result, speedups
from plksr_arch.evaluation.efficiency import plot, table

REFERENCE = "PLKSR (reference: fp32, NCHW, eager)"


def _report() -> dict:
    results = [
        Result("PLKSR", "PLKSR", "bf16", 100.0, 60.0, 850.0, 7_386_096, 8.5, 1.1),
        Result("PLKSR", REFERENCE, "fp32", 250.0, 130.0, 850.0, 7_386_096, 3.4, 1.6),
        Result("PLKSR-tiny", "PLKSR-tiny", "bf16", 30.0, 50.0, 270.0, 2_370_544, 9.0, 1.1),
        Result("SwinIR-light", "SwinIR-light", "bf16", 420.0, 360.0, 125.0, 929_628, 0.3, 0.04),
    ]
    report = {"device": "cpu", "torch": "2", "scale": 4, "input": [180, 320], "output": [720, 1280], "runs": 5}
    report.update(gemm_tflops={"fp32": 0.2, "bf16": 0.8}, results=[r.as_dict() for r in results])
    report["speedups"] = speedups(results)
    return report


def test_speedups_are_latencies_over_plksr_by_label() -> None:
    assert _report()["speedups"] == {REFERENCE: 2.5, "SwinIR-light": 4.2}
    assert speedups([Result("EDSR-baseline", "EDSR-baseline", "fp32", 1.0, 1.0, 1.0, 1, 1.0, 1.0)]) == {}


def test_table_shows_labels_gemm_and_ratios() -> None:
    text = table(_report())
    assert "| PLKSR | bf16 | 100.0 | 60.0 | 850.0 | 7,386,096 | 8.500 | 110% |" in text
    assert f"| {REFERENCE} | fp32 | 250.0 |" in text
    assert "GEMM (4096^3 matmul): fp32 0.200 TFLOP/s, bf16 0.800 TFLOP/s" in text
    assert "SwinIR-light latency / PLKSR latency: 4.20" in text


def test_latency_psnr_plot_looks_references_up_by_model_id(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = _report()
    refs = {"PLKSR_x4": {"Urban100": {"psnr": 26.5}}, "SwinIR-light_x4": {"urban100": {"psnr": 26.4}}}
    missing = plot(report, refs, str(tmp_path / "fig.png"))
    assert missing == ["PLKSR-tiny"]  # the reference run is PLKSR: it shares PLKSR's PSNR
    assert (tmp_path / "fig.png").stat().st_size > 5_000
    with pytest.raises(ValueError, match="no model has an Urban100 PSNR"):
        plot(report, {}, str(tmp_path / "none.png"))
