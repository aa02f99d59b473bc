"""Folder throughput of `plksr infer` (pipeline.upscale_files: GPU batches, and decoding ahead / encoding behind
the network where that pays, on GPUs) against the sequential loop it replaced (read, upscale, write, one image after
the other), in one run with one `Upscaler`: images/s of the loop, of `plksr infer` as it runs on this device, and of
the pipeline with the overlap forced on, each against the loop, with the CPU flags.

    python benchmarks/infer_throughput.py WORKDIR [--frames 50] [--model PLKSR-tiny] [--scale 4] [--device auto]

The frames are a video-like sequence (a photo from scikit-image panned by one pixel per frame) sized so that the
output is HD (1280x720), as in the paper's protocol; the weights are random (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

import cv2
import numpy as np


def frames(folder: str, count: int, size: tuple[int, int]) -> list[str]:
    """`count` PNG frames of `size` (h, w): a pan across scikit-image's astronaut photo, one pixel per frame."""
    from skimage import data

    os.makedirs(folder, exist_ok=True)
    h, w = size
    side = max(w + count, h)
    photo = cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"frame_{i:03d}.png")
        cv2.imwrite(path, cv2.cvtColor(photo[:h, i : i + w], cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def sequential(upscaler, files: list[str], outdir: str) -> float:
    """The loop `plksr infer` ran before: read, upscale, write, one image at a time; seconds."""
    from plksr_arch.inference.folders import swap_rb

    os.makedirs(outdir, exist_ok=True)
    start = time.perf_counter()
    for path in files:
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        cv2.imwrite(os.path.join(outdir, os.path.basename(path)), swap_rb(upscaler(swap_rb(img))))
    return time.perf_counter() - start


def main() -> None:
    import torch

    from plksr_arch.bench.protocol import input_size, peers
    from plksr_arch.cli.infer import GPU_BATCH
    from plksr_arch.inference.folders import upscale_files
    from plksr_arch.inference.upscaler import Upscaler

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir")
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--model", default="PLKSR-tiny", choices=["PLKSR", "PLKSR-tiny"])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, help="default: 8 on a GPU, 1 on a CPU (as plksr infer)")
    args = parser.parse_args()
    flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    isa = sorted({f for f in flags.split() if f.startswith(("avx", "amx")) or f == "fma"})
    print(f"CPU flags: {' '.join(isa)}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    files = frames(os.path.join(args.workdir, "frames"), args.frames, input_size(args.scale))
    upscaler = Upscaler(peers(args.scale)[args.model](), args.device, "auto")
    batch = args.batch or (GPU_BATCH if upscaler.device.type == "cuda" else 1)
    upscaler(cv2.imread(files[0]))  # warm-up: the PLKC route probe and first-pass allocations
    seq = sequential(upscaler, files, os.path.join(args.workdir, "sequential"))
    n, (h, w) = len(files), input_size(args.scale)
    print(f"{args.model} x{args.scale}, {n} frames of {w}x{h} -> HD, {upscaler.device.type} {upscaler.precision}")
    print(f"sequential loop: {n / seq:.3f} img/s ({seq:.1f} s)")
    for name, overlap in (("pipelined", None), ("overlapped", True)):
        run = upscale_files(upscaler, files, os.path.join(args.workdir, name), batch, overlap)
        if run.problems:
            raise SystemExit("\n".join(run.problems))
        how = "plksr infer" if overlap is None else "overlap forced on"
        print(
            f"{how} (batch {batch}): {n / run.seconds:.3f} img/s ({run.seconds:.1f} s, network "
            f"{run.network_seconds:.1f} s), {seq / run.seconds:.2f}x the loop"
        )
    same = all(
        np.array_equal(
            cv2.imread(os.path.join(args.workdir, "sequential", os.path.basename(p))),
            cv2.imread(os.path.join(args.workdir, "overlapped", os.path.basename(p))),
        )
        for p in files
    )
    print(f"outputs of the loop and the overlapped pipeline identical: {same}")


if __name__ == "__main__":
    main()
