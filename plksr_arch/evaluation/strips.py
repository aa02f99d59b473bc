"""Comparison strips: LR (nearest) | bicubic | the network | HR on the zoomed crop where it and bicubic differ most."""

from __future__ import annotations

import cv2
import numpy as np

PANEL = 192  # pixels of each zoomed panel (square)
LABEL_HEIGHT = 24  # pixels of the label bar above each panel
GAP = 4  # white pixels between panels


def strip_size() -> tuple[int, int]:
    """(height, width) of every comparison strip."""
    return PANEL + LABEL_HEIGHT, 4 * PANEL + 3 * GAP


def crop_box(sr: np.ndarray, bicubic: np.ndarray, size: int, scale: int) -> tuple[int, int]:
    """Top-left corner (multiples of `scale`) of the `size` x `size` window where |sr - bicubic| sums highest."""
    diff = np.abs(sr.astype(np.float32) - bicubic.astype(np.float32)).sum(axis=2)
    integral = cv2.integral(diff, sdepth=cv2.CV_64F)
    sums = integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size]
    sums = sums[::scale, ::scale]  # aligned with LR pixels
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top) * scale, int(left) * scale


def _panel(image: np.ndarray, label: str) -> np.ndarray:
    zoomed = cv2.resize(image, (PANEL, PANEL), interpolation=cv2.INTER_NEAREST)
    bar = np.full((LABEL_HEIGHT, PANEL, 3), 255, np.uint8)
    cv2.putText(bar, label, (4, LABEL_HEIGHT - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, zoomed], axis=0)


def comparison_strip(
    lq: np.ndarray,
    bicubic: np.ndarray,
    sr: np.ndarray,
    gt: np.ndarray,
    sr_psnr: float | None = None,
    bicubic_psnr: float | None = None,
    network: str = "PLKSR",
) -> np.ndarray:
    """One uint8 BGR strip (`strip_size()`) of the four images at the crop where the network (labelled `network`)
    differs most from bicubic; the labels carry the whole-image PSNR when given. `bicubic`, `sr` and `gt` share one
    size, `lq` is 1/scale."""
    scale = gt.shape[0] // lq.shape[0]
    size = min(gt.shape[0], gt.shape[1], PANEL // 2)
    size -= size % scale
    top, left = crop_box(sr, bicubic, size, scale)

    def crop(img: np.ndarray, factor: int = 1) -> np.ndarray:
        t, s, n = top // factor, left // factor, size // factor
        return img[t : t + n, s : s + n]

    def db(value: float | None) -> str:
        return f" {value:.2f} dB" if value is not None else ""

    panels = [
        _panel(crop(lq, scale), f"LR x{scale} (nearest)"),
        _panel(crop(bicubic), f"bicubic{db(bicubic_psnr)}"),
        _panel(crop(sr), f"{network}{db(sr_psnr)}"),
        _panel(crop(gt), "HR"),
    ]
    gap = np.full((PANEL + LABEL_HEIGHT, GAP, 3), 255, np.uint8)
    return np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
