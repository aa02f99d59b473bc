"""Training curves from BasicSR logs, resumed runs joined."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from plksr_arch.evaluation.curves import parse_logs, plot_curves

LOG = """\
2026-11-28 10:00:00,000 INFO: Start training from epoch: 0, iter: 0
2026-11-28 10:00:01,000 INFO: [tiny..][epoch:  0, iter:      10, lr:(1.000e-03,)] [eta: 0:01:00] l_pix: 5.0000e-02
2026-11-28 10:00:02,000 INFO: [tiny..][epoch:  0, iter:      20, lr:(1.000e-03,)] [eta: 0:01:00] l_pix: 4.0000e-02
2026-11-28 10:00:03,000 INFO: Validation Set5 (iter 20)
\t # psnr: 25.1000\tBest: 25.1000 @ 20 iter
\t # ssim: 0.7000\tBest: 0.7000 @ 20 iter

2026-11-28 10:00:04,000 INFO: [tiny..][epoch:  1, iter:   1,030, lr:(1.000e-03,)] [eta: 0:01:00] l_pix: 3.0000e-02
2026-11-28 10:00:05,000 INFO: Validation Set5
\t # psnr: 26.2000\tBest: 26.2000 @ 1030 iter
"""


def test_curves_from_logs_including_a_resumed_run(tmp_path: Path) -> None:
    first, second = tmp_path / "train_tiny_20261128_100000.log", tmp_path / "train_tiny_20261128_110000.log"
    first.write_text(LOG)
    second.write_text(LOG.split("\n", 4)[0] + "\n" + LOG.replace("psnr: 25.1000", "psnr: 25.5000").split("\n", 3)[3])
    curves = parse_logs([str(first), str(second)])
    assert curves.losses == {"l_pix": [(10, 0.05), (20, 0.04), (1030, 0.03)]}
    assert curves.metrics[("Set5", "psnr")] == [(20, 25.5), (1030, 26.2)]  # the resumed run's value wins
    assert curves.metrics[("Set5", "ssim")] == [(20, 0.7)]
    pytest.importorskip("matplotlib")
    out = plot_curves(curves, str(tmp_path / "c.png"), "tiny")
    assert cv2.imread(out).shape == (400, 1500, 3)
