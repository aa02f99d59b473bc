"""How far a video output is from `Upscaler` on the decoded input frames: `python benchmarks/video_fidelity.py
[--weights W]` writes the synthetic clips of the video tests (sound and subtitles, variable rate, 10-bit, rotated,
start offset), upscales each at the default quality and losslessly, and prints the worst and mean PSNR over the
frames and the largest difference in levels.

Without weights the network is a tiny PLKSR x2 whose last convolution is scaled by 0.1: raw random weights add
~20 levels of independent noise per colour channel, which no 4:2:0 video holds, while a trained network's output
is a natural image (its global skip), as this one's stays.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from plksr_arch import PLKSR, Upscaler, VideoSettings
from plksr_arch.data.clips import synthetic_clip
from plksr_arch.inference.video import probe, to_rgb, upscale_video

VARIANTS = {
    "sound_and_subtitles.mp4": {"subtitles": True},
    "variable_rate.mkv": {"subtitles": True, "variable_rate": True},
    "ten_bit.mp4": {"ten_bit": True},
    "rotated.mp4": {"rotation": 90},
    "start_offset.mov": {"start": 0.5},
}


def frames(path: Path) -> list[np.ndarray]:
    """The decoded RGB frames of a video file, read as the upscaler reads its sources (`to_rgb`)."""
    import av

    source = probe(str(path))
    with av.open(str(path)) as container:
        return [to_rgb(frame, source) for frame in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="weights to run (default: the tiny PLKSR x2 described above)")
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args()
    if args.weights:
        upscaler = Upscaler(args.weights, "cpu", "fp32")
    else:
        torch.manual_seed(0)
        net = PLKSR(dim=16, n_blocks=2, kernel_size=7, split_ratio=0.25, upscaling_factor=2).eval()
        with torch.no_grad():
            last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
            last.weight.mul_(0.1)
            last.bias.mul_(0.1)
        upscaler = Upscaler(net, "cpu", "fp32")
    print("| clip | encoding | worst PSNR (dB) | mean PSNR (dB) | largest difference (levels) |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        for name, options in VARIANTS.items():
            src = folder / name
            synthetic_clip(str(src), args.frames, (64, 36), **options)
            expected = [upscaler(rgb) for rgb in frames(src)]
            peak = 65535 if expected[0].dtype == np.uint16 else 255
            for settings in (VideoSettings(), VideoSettings(lossless=True)):
                out = folder / f"{'lossless' if settings.lossless else 'default'}_{name}"
                run = upscale_video(upscaler, str(src), str(out), settings)
                pairs = list(zip(frames(out), expected, strict=True))
                scores = [psnr(got, want, peak) for got, want in pairs]
                diff = max(int(np.abs(got.astype(np.int64) - want).max()) for got, want in pairs)
                print(f"| {name} | {run.encoding} | {min(scores):.2f} | {np.mean(scores):.2f} | {diff} |")


if __name__ == "__main__":
    main()
