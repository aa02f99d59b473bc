"""`plksr demo`'s verdict: no table that looks like success unless PLKSR beats bicubic; argument errors."""

from __future__ import annotations

import pytest

from plksr_arch.cli import main
from plksr_arch.training import demo_pipeline as demo
from plksr_arch.training.demo_pipeline import Plan, tiers


def _report(psnr: float, bicubic: float) -> dict:
    entry = {"psnr": psnr, "ssim": 0.8, "n_images": 2, "bicubic": {"psnr": bicubic, "ssim": 0.8}}
    return {"name": "demo_PLKSR-demo_x4", "scale": 4, "datasets": {"skimage_heldout": entry}}


@pytest.mark.parametrize(("psnr", "status"), [(29.8, 0), (29.3, 1), (29.38, 1)])
def test_demo_exits_non_zero_unless_plksr_beats_bicubic(monkeypatch, capsys, psnr: float, status: int) -> None:
    plan = Plan(tiers()[-1], 10.0, 400)
    monkeypatch.setattr(demo, "run_demo", lambda workdir, scale, minutes, real: (_report(psnr, 29.38), plan))
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
    cases = (
        (["--minutes", "0"], "--minutes 0.0: must be > 0"),
        (["--threads", "0"], "--threads 0"),
        (["--real", "--scale", "3"], "--scale 3: --real supports x2 and x4"),
    )
    for args, message in cases:
        assert main(["demo", *args]) == 2
        assert capsys.readouterr().err.startswith(f"plksr demo: error: {message}")


def test_real_demo_names_degraded_photos_and_lists_strips(monkeypatch, capsys, tmp_path) -> None:
    plan = Plan(tiers(real=True)[0], 4.0, 800)
    report = {**_report(21.2, 20.5), "name": "demo_real_RealPLKSR-demo_x4"}
    strips = tmp_path / "results" / report["name"] / "visualization" / "heldout"
    strips.mkdir(parents=True)
    (strips / "chelsea_strip.png").write_bytes(b"")
    calls = []

    def fake(workdir: str, scale: int, minutes: float, real: bool) -> tuple:
        calls.append(real)
        return report, plan

    monkeypatch.setattr(demo, "run_demo", fake)
    assert main(["demo", "--real", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert calls == [True] and str(strips / "chelsea_strip.png") in out
    assert "RealPLKSR-demo x4 after 800 iterations beats bicubic on the degraded held-out photos by +0.70 dB" in out
