"""Measurement helpers: median timing, peak RSS, FLOP counting, the convolution limit."""

from __future__ import annotations

import itertools

import pytest
import torch

from plksr_arch.runtime.measure import conv_limit_tflops, count_flops, time_runs

from ..conftest import run_python

CPU = torch.device("cpu")


def test_time_runs_is_the_median_after_warmup(monkeypatch) -> None:
    import plksr_arch.runtime.measure as measure

    calls = []
    clock = itertools.count(step=0.5)  # each perf_counter call advances 0.5 s
    monkeypatch.setattr(measure.time, "perf_counter", lambda: next(clock))
    assert time_runs(lambda: calls.append(1), CPU, warmup=2, runs=3) == 500.0
    assert len(calls) == 5


def test_count_flops_counts_two_per_multiply_add() -> None:
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv, torch.rand(1, 3, 10, 10)) == 2 * 8 * 3 * 9 * 100


def test_rss_peak_sees_a_large_allocation_and_the_limit_is_positive() -> None:
    """In a fresh process, as `rss_peak_mib` requires: in a test worker the C allocator may already hold freed
    memory that a 64 MiB tensor reuses without raising the resident set."""
    code = (
        "import torch\nfrom plksr_arch.runtime.measure import rss_peak_mib\n"
        "print(rss_peak_mib(lambda: torch.ones(64 << 20, dtype=torch.uint8).add_(1)))"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert 60 < float(proc.stdout) < 200  # the 64 MiB tensor, and not much more


def test_conv_limit_is_the_convolutions_flops_over_its_median_time(monkeypatch) -> None:
    """256 -> 256 channels, 3x3, 128x128 in channels_last: 19.33 GFLOPs; at a median of 10 ms, 1.933 TFLOP/s."""
    import plksr_arch.runtime.measure as measure

    seen = []

    def timed(run, device, warmup, runs) -> float:
        seen.append(run().shape)
        return 10.0

    monkeypatch.setattr(measure, "time_runs", timed)
    assert conv_limit_tflops(CPU, "fp32", runs=1) == pytest.approx(2 * 256 * 256 * 9 * 128 * 128 / 0.010 / 1e12)
    assert seen == [torch.Size([1, 256, 128, 128])]
