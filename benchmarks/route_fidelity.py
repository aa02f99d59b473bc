"""PSNR of PLKSR weights on benchmark sets through each inference route, against the plain reference (fp32, NCHW,
eager `model(x)` with the direct PLKC): `Upscaler` with the direct and the spectral PLKC in each given precision.
The issue-13 criterion is that every route stays within 0.02 dB of the reference on trained weights.

    python benchmarks/route_fidelity.py WEIGHTS DATASETS_ROOT [--scale 4] [--sets Set5 Set14] [--precisions fp32]

`DATASETS_ROOT` holds BasicSR-layout sets (`<set>/GTmod12`, `<set>/LRbicx<scale>`, same file names), e.g.
`../shared/data/benchmarks`. PSNR on the Y channel with `scale` border pixels cropped (BasicSR's and the paper's).
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np


def main() -> None:
    import torch

    from plksr_arch.inference.upscaler import Upscaler
    from plksr_arch.weights.read import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights")
    parser.add_argument("root")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14"])
    parser.add_argument("--precisions", nargs="+", default=["fp32"])
    args = parser.parse_args()
    from basicsr.metrics import calculate_psnr  # after plksr_arch, whose import fixes basicsr for current torchvision

    model = load_model(args.weights).eval()
    routes = {"reference (fp32, NCHW, eager, direct)": None}
    for precision in args.precisions:
        for route in ("direct", "spectral"):
            routes[f"Upscaler {precision} {route}"] = Upscaler(model, "cpu", precision, large_kernel=route)
    for name in args.sets:
        gt_dir, lq_dir = (os.path.join(args.root, name, d) for d in ("GTmod12", f"LRbicx{args.scale}"))
        scores: dict[str, list[float]] = {label: [] for label in routes}
        for file in sorted(os.listdir(gt_dir)):
            gt = cv2.imread(os.path.join(gt_dir, file), cv2.IMREAD_COLOR)
            lq = cv2.imread(os.path.join(lq_dir, file), cv2.IMREAD_COLOR)[..., ::-1]
            for label, upscaler in routes.items():
                if upscaler is None:
                    x = torch.from_numpy(np.ascontiguousarray(lq.transpose(2, 0, 1))).float()[None] / 255
                    with torch.inference_mode():
                        y = model(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
                    sr = (y * 255).round().astype(np.uint8)
                else:
                    sr = upscaler(np.ascontiguousarray(lq))
                scores[label].append(calculate_psnr(sr[..., ::-1], gt, args.scale, test_y_channel=True))
        reference = float(np.mean(scores[next(iter(routes))]))
        for label, values in scores.items():
            mean = float(np.mean(values))
            print(f"{name} x{args.scale} {label}: {mean:.4f} dB ({mean - reference:+.4f})")


if __name__ == "__main__":
    main()
