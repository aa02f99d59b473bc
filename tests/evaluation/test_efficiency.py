"""`plksr bench` results (benchmark.Result: model id apart from its label) and their rendering
(evaluation.efficiency: the table with the limit line and ratios, the latency-vs-PSNR plot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plksr_arch.bench.protocol import Result, speedups
from plksr_arch.evaluation.efficiency import paper_comparison, paper_table, plot, table

REFERENCE = "PLKSR (reference: fp32, NCHW, eager)"


def _report() -> dict:
    results = [
        Result("PLKSR", "PLKSR", "bf16", 100.0, 60.0, 850.0, 7_386_096, 8.5, 1.1),
        Result("PLKSR", REFERENCE, "fp32", 250.0, 130.0, 850.0, 7_386_096, 3.4, 1.6),
        Result("PLKSR-tiny", "PLKSR-tiny", "bf16", 30.0, 50.0, 270.0, 2_370_544, 9.0, 1.1),
        Result("SwinIR-light", "SwinIR-light", "bf16", 420.0, 360.0, 125.0, 929_628, 0.3, 0.04),
    ]
    report = {"device": "cpu", "torch": "2", "scale": 4, "input": [180, 320], "output": [720, 1280], "runs": 5}
    report.update(limit="3x3 conv", limit_tflops={"fp32": 0.2, "bf16": 0.8}, results=[r.as_dict() for r in results])
    report["speedups"] = speedups(results)
    return report


def test_speedups_are_latencies_over_plksr_by_label() -> None:
    assert _report()["speedups"] == {REFERENCE: 2.5, "SwinIR-light": 4.2}
    assert speedups([Result("EDSR-baseline", "EDSR-baseline", "fp32", 1.0, 1.0, 1.0, 1, 1.0, 1.0)]) == {}


def test_table_shows_labels_limit_and_ratios() -> None:
    text = table(_report())
    assert "| PLKSR | bf16 | 100.0 | 60.0 | 850.0 | 7,386,096 | 8.500 | 110% |" in text
    assert f"| {REFERENCE} | fp32 | 250.0 |" in text
    assert "Limit (3x3 conv): fp32 0.200 TFLOP/s, bf16 0.800 TFLOP/s" in text
    assert "SwinIR-light latency / PLKSR latency: 4.20" in text


def _paper_report() -> dict:
    """A report with the peers the paper compares with (latencies chosen so that ratios are round)."""
    results = [
        Result("PLKSR", "PLKSR", "fp32", 100.0, 50.0, 850.0, 1, 1.0, 1.0),
        Result("PLKSR", REFERENCE, "fp32", 120.0, 60.0, 850.0, 1, 1.0, 1.0),
        Result("PLKSR-tiny", "PLKSR-tiny", "fp32", 30.0, 40.0, 270.0, 1, 1.0, 1.0),
        Result("SRFormer-light", "SRFormer-light", "fp32", 400.0, 100.0, 125.0, 1, 1.0, 1.0),
        Result("SAFMN", "SAFMN", "fp32", 20.0, 40.0, 40.0, 1, 1.0, 1.0),
        Result("EDSR-baseline", "EDSR-baseline", "fp32", 90.0, 80.0, 230.0, 1, 1.0, 1.0),
    ]
    report = {"device": "cpu", "torch": "2", "scale": 4, "input": [180, 320], "output": [720, 1280], "runs": 5}
    report.update(limit="3x3 conv", limit_tflops={"fp32": 0.2}, results=[r.as_dict() for r in results])
    return report


def test_paper_comparison_sets_our_ratios_beside_the_papers() -> None:
    """The paper's headline at x4: PLKSR has 68.1% less latency and 80.2% less memory than SRFormer-light; each peer
    is compared with the variant of its table (SAFMN with PLKSR-tiny); peers outside the paper are left out."""
    rows = {(r["variant"], r["peer"]): r for r in paper_comparison(_paper_report())}
    assert list(rows) == [("PLKSR", "SRFormer-light"), ("PLKSR-tiny", "SAFMN")]
    srformer = rows["PLKSR", "SRFormer-light"]
    assert round(100 * srformer["paper"]["latency"], 1) == -68.1
    assert round(100 * srformer["paper"]["memory"], 1) == -80.2
    assert srformer["measured"] == pytest.approx({"latency": -0.75, "memory": -0.5})
    assert rows["PLKSR-tiny", "SAFMN"]["measured"] == pytest.approx({"latency": 0.5, "memory": 0.0})
    text = paper_table(_paper_report())
    assert "| PLKSR | SRFormer-light | -68.1% | -75.0% | -80.2% | -50.0% |" in text
    assert "Not measured (no implementation in basicsr or spandrel): EDSR, SwinIR-light, ELAN-light" in text


def test_paper_headline_ratios_against_elan() -> None:
    """The other headline pair, from the shipped efficiency table: 42.3% less latency, 45.6% less memory."""
    from plksr_arch.evaluation import paper

    ours, elan = paper.efficiency_of("PLKSR_DIV2K_x4"), paper.efficiency_of("ELAN-light_DIV2K_x4")
    assert round(100 * (1 - ours["latency_ms"] / elan["latency_ms"]), 1) == 42.3
    assert round(100 * (1 - ours["memory_mb"] / elan["memory_mb"]), 1) == 45.6


def test_plot_draws_the_papers_figure_beside_ours(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    missing = plot(_paper_report(), str(tmp_path / "fig.png"))
    assert missing == ["EDSR-baseline"]  # not in the paper; PLKSR's reference run is not a method of its own
    assert (tmp_path / "fig.png").stat().st_size > 20_000
    only_ours = {**_paper_report(), "results": [_paper_report()["results"][-1]]}
    with pytest.raises(ValueError, match="none of the measured models is in the paper's tables at x4"):
        plot(only_ours, str(tmp_path / "none.png"))
