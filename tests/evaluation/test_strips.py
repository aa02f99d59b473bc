"""Comparison strips: size, layout and the crop where the models differ."""

from __future__ import annotations

import numpy as np

from plksr_arch.evaluation.strips import GAP, LABEL_HEIGHT, PANEL, comparison_strip, crop_box, strip_size


def test_comparison_strip_size_and_crop_where_models_differ() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    bicubic = gt.copy()
    sr = gt.copy()
    sr[150:200, 40:90] = 255 - sr[150:200, 40:90]  # the one place SR and bicubic differ
    top, left = crop_box(sr, bicubic, 48, 4)
    assert top % 4 == 0 and left % 4 == 0
    assert 150 - 48 < top <= 150 + 2 and 40 - 48 < left <= 40 + 2
    strip = comparison_strip(gt[::4, ::4], bicubic, sr, gt, 31.234, 28.5)
    assert strip.shape == (*strip_size(), 3) == (PANEL + LABEL_HEIGHT, 4 * PANEL + 3 * GAP, 3)
    assert strip.dtype == np.uint8
    assert (strip[LABEL_HEIGHT:, PANEL : PANEL + GAP] == 255).all()  # white gap between panels
    small = comparison_strip(gt[:30:3, :45:3], bicubic[:30, :45], sr[:30, :45], gt[:30, :45])
    assert small.shape == (*strip_size(), 3)
