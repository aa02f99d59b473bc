"""`plksr demo`'s verdict: no table that looks like success unless PLKSR beats bicubic; argument errors."""

from __future__ import annotations

import pytest

from plksr_arch import demo
from plksr_arch.cli import main
from plksr_arch.demo import Plan, tiers


def _report(psnr: float, bicubic: float) -> dict:
    entry = {"psnr": psnr, "ssim": 0.8, "n_images": 2, "bicubic": {"psnr": bicubic, "ssim": 0.8}}
    return {"name": "demo_PLKSR-demo_x4", "scale": 4, "datasets": {"skimage_heldout": entry}}


@pytest.mark.parametrize(("psnr", "status"), [(29.8, 0), (29.3, 1), (29.38, 1)])
def test_demo_exits_non_zero_unless_plksr_beats_bicubic(monkeypatch, capsys, psnr: float, status: int) -> None:
    plan = Plan(tiers()[-1], 10.0, 400)
    monkeypatch.setattr(demo, "run_demo", lambda workdir, scale, minutes: (_report(psnr, 29.38), plan))
    assert main(["demo", "--minutes", "1"]) == status
    out, err = capsys.readouterr()
    assert "| skimage_heldout | 2 |" in out
    if status:
        assert (
            f"PLKSR-demo x4 after 400 iterations does NOT beat bicubic on the held-out photos ({psnr - 29.38:+.2f}"
            in err
        )
    else:
        assert "PLKSR-demo x4 after 400 iterations beats bicubic on the held-out photos by +0.42 dB PSNR." in out


def test_bad_demo_arguments_are_one_line_errors(capsys) -> None:
    for args, message in ((["--minutes", "0"], "--minutes 0.0: must be > 0"), (["--threads", "0"], "--threads 0")):
        assert main(["demo", *args]) == 2
        assert capsys.readouterr().err.startswith(f"plksr demo: error: {message}")
