"""Training curves from BasicSR logs, resumed runs joined."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from plksr_arch.evaluation.curves import parse_logs, plot_curves

from ..conftest import TRAIN_LOG


def test_curves_from_logs_including_a_resumed_run(tmp_path: Path) -> None:
    first, second = tmp_path / "train_tiny_20261128_100000.log", tmp_path / "train_tiny_20261128_110000.log"
    first.write_text(TRAIN_LOG)
    second.write_text(
        TRAIN_LOG.split("\n", 4)[0] + "\n" + TRAIN_LOG.replace("psnr: 25.1000", "psnr: 25.5000").split("\n", 3)[3]
    )
    curves = parse_logs([str(first), str(second)])
    assert curves.losses == {"l_pix": [(10, 0.05), (20, 0.04), (1030, 0.03)]}
    assert curves.metrics[("Set5", "psnr")] == [(20, 25.5), (1030, 26.2)]  # the resumed run's value wins
    assert curves.metrics[("Set5", "ssim")] == [(20, 0.7)]
    pytest.importorskip("matplotlib")
    out = plot_curves(curves, str(tmp_path / "c.png"), "tiny")
    assert cv2.imread(out).shape == (400, 1500, 3)
