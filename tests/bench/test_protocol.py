"""The peers of `plksr bench`: the paper's compared methods in their papers' configurations, and what is missing."""

from __future__ import annotations

import pytest
import torch

from plksr_arch.bench.protocol import SPANDREL_PEERS, bench, peers
from plksr_arch.errors import UserError
from plksr_arch.runtime.measure import count_flops

# Parameters at x4 of the configurations the methods' papers (and the PLKSR paper's tables) use.
PARAMS_X4 = {
    "EDSR": 43_089_923,
    "SwinIR-light": 929_628,
    "OmniSR": 805_376,
    "CRAFT": 753_344,
    "SRFormer-light": 872_748,
    "DITN-real": 444_112,
    "SAFMN": 239_520,
}


@pytest.mark.parametrize("name", list(PARAMS_X4))
def test_paper_peers_build_in_their_paper_configuration(name: str) -> None:
    pytest.importorskip("spandrel_extra_arches")
    net = peers(4)[name]().eval()
    assert sum(p.numel() for p in net.parameters()) == PARAMS_X4[name]
    if name == "EDSR":
        return  # 43 M parameters: shape-checked through the others' shared path, skipped for time
    for scale in (2, 3, 4):
        with torch.no_grad():
            out = peers(scale)[name]().eval()(torch.rand(1, 3, 13, 21))  # sizes off every window and patch
        assert out.shape == (1, 3, 13 * scale, 21 * scale)


def test_missing_spandrel_is_one_line_naming_the_extra(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n.startswith("spandrel") else real(n, *a))
    with pytest.raises(UserError, match=r"models: SAFMN needs spandrel, SRFormer-light needs spandrel_extra_arches"):
        bench(["PLKSR-tiny", "SAFMN", "SRFormer-light"], torch.device("cpu"))
    assert set(SPANDREL_PEERS) <= set(peers(4))


@pytest.mark.slow
def test_bench_rows_limit_and_compiled_first_call(monkeypatch) -> None:
    """PLKSR's rows (Upscaler, reference, torch.compile with its first call), each rate shared against the limit of
    its precision; a small network and input keep compilation short (peak memory is measured elsewhere)."""
    import plksr_arch.bench.protocol as benchmark
    from plksr_arch import PLKSR

    from ..conftest import TINY_NET

    net = {k: v for k, v in TINY_NET.items() if k != "type"}
    monkeypatch.setattr(benchmark, "peers", lambda scale: {"PLKSR": lambda: PLKSR(**net, upscaling_factor=scale)})
    monkeypatch.setattr(benchmark, "input_size", lambda scale: (24, 32))
    monkeypatch.setattr(benchmark, "cpu_peak_mib", lambda *args: 1.0)
    report = bench(["PLKSR"], torch.device("cpu"), scale=2, warmup=0, runs=1, log=lambda line: None, compile=True)
    rows = {r["label"]: r for r in report["results"]}
    assert list(rows) == ["PLKSR", "PLKSR (reference: fp32, NCHW, eager)", "PLKSR (torch.compile)"]
    compiled = rows["PLKSR (torch.compile)"]
    assert compiled["first_call_s"] * 1000 > compiled["latency_ms"]  # the first call compiles
    assert rows["PLKSR"]["first_call_s"] == 0
    assert report["limit"] == "3x3 conv 256->256 at 128x128, channels_last" and report["limit_tflops"]["fp32"] > 0
    flops = count_flops(PLKSR(**net, upscaling_factor=2), torch.rand(1, 3, 24, 32))
    for row in rows.values():
        assert row["gflops"] == pytest.approx(flops / 1e9)
        assert row["tflops"] == pytest.approx(row["gflops"] / row["latency_ms"])  # GFLOP per ms = TFLOP/s
        assert row["limit_share"] == pytest.approx(row["tflops"] / report["limit_tflops"][row["mode"]])
