"""`plksr bench --video`: how close a whole video pass comes to the network's own frame rate. On a synthetic clip
(`data.clips`: moving pattern, AAC sound) it times, in one process: the network alone on the already decoded frames
(`Upscaler.batch`, the frames/s a video pass could reach), then `upscale_video` end to end (decode, network, encode,
mux, sound copied) with the I/O in line and with encoding on a writer thread; and reports each end-to-end rate as a
ratio of the network's. PLKSR-tiny x4 with its official initialisation unless weights are given: the speed does
not depend on the values.
"""

from __future__ import annotations

import os.path as osp
import tempfile
import time
from collections.abc import Callable
from typing import Any

from plksr_arch.errors import UserError

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_flags() -> str:
    """The SIMD flags that decide the CPU's speed class, as `lscpu` lists them (Linux; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return ""
    return " ".join(flag for flag in CPU_FLAGS if flag in flags) or "none of " + ", ".join(CPU_FLAGS)


def bench_video(
    weights: str | None,
    frames: int,
    size: tuple[int, int],
    device: str = "auto",
    batch: int | None = None,
    say: Callable[[str], object] = print,
) -> dict[str, Any]:
    """The report: machine, network, clip, and frames/s of the network and of each end-to-end mode with its ratio."""
    from plksr_arch.archs.registry import presets
    from plksr_arch.data.clips import synthetic_clip
    from plksr_arch.inference.upscaler import Upscaler
    from plksr_arch.inference.video import probe, require_av, to_rgb, upscale_video
    from plksr_arch.runtime.device import describe

    av = require_av()
    if frames < 1 or min(size) < 16:
        raise UserError(f"--frames {frames} / --size {size[0]}x{size[1]}: need >= 1 frame of at least 16x16")
    model = weights or presets()["PLKSR-tiny"].build("PLKSR-tiny", 4)
    upscaler = Upscaler(model, device)
    cuda = upscaler.device.type == "cuda"
    batch = batch or (8 if cuda else 1)
    with tempfile.TemporaryDirectory(prefix="plksr-video-bench-") as work:
        src = osp.join(work, "clip.mp4")
        synthetic_clip(src, frames, size)
        source = probe(src)
        assert source is not None
        with av.open(src) as container:
            decoded = [to_rgb(frame, source) for frame in container.decode(video=0)]
        say(f"{len(decoded)} frames of {size[0]}x{size[1]} -> x{upscaler.scale}, {describe(upscaler.device)}, "
            f"{upscaler.precision}, batch {batch}; CPU flags: {cpu_flags()}")  # fmt: skip
        upscaler.batch(decoded[:batch])  # warm-up: oneDNN/cuDNN pick their kernels for this size
        tick = time.perf_counter()
        for start in range(0, len(decoded), batch):
            upscaler.batch(decoded[start : start + batch])
        if cuda:
            import torch

            torch.cuda.synchronize(upscaler.device)
        network = len(decoded) / (time.perf_counter() - tick)
        say(f"network on decoded frames: {network:.2f} frames/s")
        rows = {"network": {"fps": network, "ratio": 1.0}}
        for mode, overlap in (("in line", False), ("writer thread", True)):
            run = upscale_video(upscaler, src, osp.join(work, f"out-{overlap}.mp4"), batch=batch, overlap=overlap)
            fps = run.frames / run.seconds
            rows[f"end to end, {mode}"] = {"fps": fps, "ratio": fps / network, "encoding": run.encoding}
            say(f"end to end, {mode}: {fps:.2f} frames/s = {fps / network:.2f}x the network's ({run.encoding})")
    return {
        "device": describe(upscaler.device),
        "cpu_flags": cpu_flags(),
        "precision": upscaler.precision,
        "network": weights or "PLKSR-tiny x4 (official initialisation)",
        "frames": frames,
        "size": list(size),
        "batch": batch,
        "rows": rows,
    }


def table(report: dict[str, Any]) -> str:
    lines = ["| pass | frames/s | of the network's |", "| --- | --- | --- |"]
    for name, row in report["rows"].items():
        lines.append(f"| {name} | {row['fps']:.2f} | {row['ratio']:.2f}x |")
    return "\n".join(lines)
