"""PSNR/SSIM exactly as the SR literature computes them (BasicSR's functions on rounded uint8 images) and the
MATLAB-bicubic baseline, which `plksr test` adds to each image through `BicubicBaseline`.

BasicSR reads every benchmark image as 3-channel BGR, so a greyscale image (Set14's `bridge`) is scored on the Y of
an R=G=B image, `16 + 219 * v / 255`, which compresses the range, not on its grey values. For bicubic x4 `bridge`
scores 24.48 dB that way and 23.15 dB on grey values, +0.09 dB on the Set14 mean: our Set14 bicubic row is
30.32 / 27.63 / 26.09 (x2/x3/x4) against the published 30.24 / 27.55 / 26.00. Set5 (all colour) matches within
0.01 dB: 33.66 / 30.38 / 28.40.
"""

from __future__ import annotations

import os.path as osp

import numpy as np
import torch


def bicubic_image(lq: torch.Tensor, scale: int) -> np.ndarray:
    """MATLAB-bicubic upsampling (BasicSR's `imresize`) of an RGB [0, 1] LR tensor (CHW or 1CHW) as uint8 BGR."""
    from basicsr.utils import tensor2img
    from basicsr.utils.matlab_functions import imresize

    up = np.clip(imresize(tensor2img(lq, out_type=np.float32), scale), 0.0, 1.0)
    return (up * 255.0).round().astype(np.uint8)


def image_metrics(sr: np.ndarray, gt: np.ndarray, metrics_opt: dict) -> dict[str, float]:
    """Every metric of `metrics_opt` (the `val.metrics` mapping) for one uint8 BGR image pair."""
    from basicsr.metrics import calculate_metric

    return {name: float(calculate_metric({"img": sr, "img2": gt}, opt)) for name, opt in metrics_opt.items()}


class BicubicBaseline:
    """The per-image hook of `plksr test` (`PLKSRModel.validation(..., on_image=...)`): scores the MATLAB-bicubic
    upsampling of the same LR image with the same metrics and, with `strips_dir`, writes a comparison strip
    (`<image>_strip.png`: LR | bicubic | `network` | HR). Returns the baseline's metrics, or None without ground
    truth."""

    def __init__(self, metrics_opt: dict, scale: int, strips_dir: str | None = None, network: str = "PLKSR") -> None:
        self.metrics_opt, self.scale, self.strips_dir, self.network = metrics_opt, scale, strips_dir, network

    def __call__(self, name: str, lq: torch.Tensor, sr: np.ndarray, gt: np.ndarray | None, scores: dict) -> dict | None:
        from basicsr.utils import imwrite, tensor2img

        from plksr_arch.evaluation.strips import comparison_strip

        if gt is None or not self.metrics_opt:
            return None
        bicubic = bicubic_image(lq, self.scale)
        baseline = image_metrics(bicubic, gt, self.metrics_opt)
        if self.strips_dir:
            strip = comparison_strip(
                tensor2img(lq), bicubic, sr, gt, scores.get("psnr"), baseline.get("psnr"), self.network
            )
            imwrite(strip, osp.join(self.strips_dir, f"{name}_strip.png"))
        return baseline
