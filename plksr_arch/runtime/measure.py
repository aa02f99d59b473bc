"""Measurement helpers shared by `plksr bench` and the demo's calibration: median timing (CUDA events on GPUs),
peak memory (CUDA allocator, or the process's resident set size sampled every millisecond), FLOP counting and the
device's measured limit (the rate of a large compute-bound convolution)."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import torch
from torch import nn

from plksr_arch.runtime.device import autocast_dtype


def time_runs(run: Callable[[], object], device: torch.device, warmup: int, runs: int) -> float:
    """Median milliseconds of `runs` calls after `warmup` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        else:
            tick = time.perf_counter()
            run()
            times.append((time.perf_counter() - tick) * 1000)
    return statistics.median(times)


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * 4096


def cuda_peak_mib(run: Callable[[], object], device: torch.device) -> float:
    """Peak CUDA memory of one call above what was allocated before it (weights and input)."""
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def rss_peak_mib(run: Callable[[], object]) -> float:
    """Peak resident set size of one call above the level before it, sampled every millisecond. Only meaningful in
    a fresh process: once the C allocator holds freed memory, later peaks reuse it and look smaller."""
    start = peak = _rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.001):
            peak = max(peak, _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    run()
    done.set()
    sampler.join()
    return (max(peak, _rss_bytes()) - start) / 2**20


def count_flops(model: nn.Module, x: torch.Tensor) -> float:
    """FLOPs of one forward pass (2 per multiply-add), counted on the CPU in fp32."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.cpu().eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x.cpu())
    return float(counter.get_total_flops())


# The limit's convolution: 3x3, 256 -> 256 channels on a 128x128 map, channels_last: compute-bound on every device
# (arithmetic intensity ~1,000 FLOP/byte) and run by the same oneDNN/cuDNN convolution kernels as PLKSR's. On AMD
# CPUs MKL's GEMM runs below these kernels, so a GEMM rate overstated every network's share (112-174% for PLKSR).
LIMIT_CONV = (256, 256, 3, 128)


def conv_limit_tflops(device: torch.device, mode: str, runs: int = 3) -> float:
    """The device's convolution rate (TFLOP/s) at `mode`'s precision: `LIMIT_CONV` in channels_last, median of
    `runs` after one warm-up; the ceiling a network of dense convolutions can reach here."""
    channels_in, channels_out, k, size = LIMIT_CONV
    dtype = autocast_dtype(mode) or torch.float32
    conv = nn.Conv2d(channels_in, channels_out, k, padding=k // 2).to(device, dtype, memory_format=torch.channels_last)
    x = torch.randn(1, channels_in, size, size, device=device, dtype=dtype).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        ms = time_runs(lambda: conv(x), device, 1, runs)
    return 2 * channels_in * channels_out * k * k * size * size / (ms / 1000) / 1e12
