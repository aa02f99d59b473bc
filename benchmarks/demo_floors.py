"""How many iterations a demo network needs to beat bicubic: the measurement behind the `floor` of each tier in
plksr_arch/resources/demo.yml.

Trains one PLKSR configuration on the demo's photos (the same sub-images `plksr demo` builds, random crops, flips and
rotations, Adam, L1, linear warm-up then cosine or constant learning rate, fp32) in a plain loop without BasicSR's
pipeline, and prints the held-out PSNR against MATLAB bicubic (Y channel, crop = scale) every `--every` iterations,
with the CPU flags and the thread count. Example (the PLKSR-demo tier, x4, one thread):

    python benchmarks/demo_floors.py --dim 32 --blocks 4 --batch 8 --patch 24 --lr 2e-3 --iters 500 --threads 1
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from plksr_arch.archs.plksr_arch import PLKSR
from plksr_arch.data.photos import build_dataset
from plksr_arch.runtime.device import describe


def _images(folder: str) -> list[np.ndarray]:
    import cv2

    return [cv2.imread(os.path.join(folder, n))[..., ::-1] / 255.0 for n in sorted(os.listdir(folder))]


def _y_psnr(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    from basicsr.metrics.psnr_ssim import calculate_psnr

    def to_bgr8(img: np.ndarray) -> np.ndarray:
        return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)[..., ::-1]

    return calculate_psnr(to_bgr8(sr), to_bgr8(hr), scale, test_y_channel=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--kernel", type=int, default=13)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=48, help="LR patch size")
    parser.add_argument("--lr", type=float, default=7e-4)
    parser.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--iters", type=int, default=600)
    parser.add_argument("--every", type=int, default=100, help="evaluate every N iterations")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--data", default="demo_floors_data", help="where the demo photos are written")
    args = parser.parse_args()

    from basicsr.utils.matlab_functions import imresize

    torch.set_num_threads(args.threads)
    print(f"{describe(torch.device('cpu'))}, {args.threads} thread(s), fp32")
    folders = build_dataset(args.data, args.scale)
    train_hr, train_lr = _images(folders["train_gt"]), _images(folders["train_lq"])
    test_hr, test_lr = _images(folders["test_gt"]), _images(folders["test_lq"])
    pairs = list(zip(test_lr, test_hr, strict=True))
    bicubic = np.mean([_y_psnr(imresize(lr, args.scale), hr, args.scale) for lr, hr in pairs])

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = PLKSR(dim=args.dim, n_blocks=args.blocks, kernel_size=args.kernel, use_ea=False, upscaling_factor=args.scale)
    optim = torch.optim.Adam(net.parameters(), args.lr, betas=(0.9, 0.99))

    def lr_factor(i: int) -> float:
        if i < args.warmup:
            return (i + 1) / args.warmup
        if args.schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (i - args.warmup) / max(1, args.iters - args.warmup)))

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        s, p, lqs, gts = args.scale, args.patch, [], []
        for _ in range(args.batch):
            k = rng.integers(len(train_lr))
            y, x = rng.integers(train_lr[k].shape[0] - p + 1), rng.integers(train_lr[k].shape[1] - p + 1)
            lq, gt = train_lr[k][y : y + p, x : x + p], train_hr[k][y * s : (y + p) * s, x * s : (x + p) * s]
            if rng.random() < 0.5:
                lq, gt = lq[:, ::-1], gt[:, ::-1]
            if rng.random() < 0.5:
                lq, gt = lq[::-1], gt[::-1]
            if rng.random() < 0.5:
                lq, gt = lq.transpose(1, 0, 2), gt.transpose(1, 0, 2)
            lqs.append(lq.transpose(2, 0, 1))
            gts.append(gt.transpose(2, 0, 1))
        return torch.from_numpy(np.stack(lqs)).float(), torch.from_numpy(np.stack(gts)).float()

    @torch.no_grad()
    def heldout_psnr() -> float:
        net.eval()
        psnrs = []
        for lr, hr in pairs:
            sr = net(torch.from_numpy(lr.transpose(2, 0, 1).copy()).float()[None])[0].permute(1, 2, 0).numpy()
            psnrs.append(_y_psnr(sr, hr, args.scale))
        net.train()
        return float(np.mean(psnrs))

    start = time.perf_counter()
    for i in range(args.iters):
        for group in optim.param_groups:
            group["lr"] = args.lr * lr_factor(i)
        lq, gt = batch()
        optim.zero_grad()
        torch.nn.functional.l1_loss(net(lq), gt).backward()
        optim.step()
        if (i + 1) % args.every == 0 or i + 1 == args.iters:
            psnr = heldout_psnr()
            seconds = time.perf_counter() - start
            gain = psnr - bicubic
            print(f"iter {i + 1}: {psnr:.2f} dB, bicubic {bicubic:.2f} dB, gain {gain:+.3f} dB ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
