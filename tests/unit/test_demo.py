"""The demo's choice of network and iteration count, and its verdict: no table that looks like success unless PLKSR
beats bicubic."""

from __future__ import annotations

import logging

import pytest

from plksr_arch import demo
from plksr_arch.cli import main
from plksr_arch.demo import Plan, plan_training, tiers


def _plan(minutes: float, rates: dict[str, float]) -> Plan:
    return plan_training(minutes, lambda tier, total_iter: {"label": tier.label}, lambda opt: rates[opt["label"]])


def test_tiers_are_plksr_networks_largest_first() -> None:
    from plksr_arch import PLKSR

    listed = tiers()
    assert [t.label for t in listed] == ["PLKSR-tiny", "PLKSR-demo"]
    sizes = [sum(p.numel() for p in PLKSR(**t.network).parameters()) for t in listed]
    assert sizes == sorted(sizes, reverse=True)
    assert all(t.floor > 0 and t.batch > 0 and t.lr_patch > 0 for t in listed)


def test_the_largest_tier_that_reaches_its_floor_trains_for_the_whole_budget() -> None:
    big, small = tiers()
    fast = _plan(10, {big.label: 2 * big.floor / 600, small.label: 100.0})
    assert (fast.tier, fast.total_iter) == (big, 2 * big.floor)
    slow = _plan(10, {big.label: 0.5 * big.floor / 600, small.label: 4 * small.floor / 600})
    assert (slow.tier, slow.total_iter) == (small, 4 * small.floor)
    assert slow.minutes == pytest.approx(10)


def test_too_slow_for_every_tier_trains_the_smallest_for_its_floor_and_says_how_long(caplog) -> None:
    big, small = tiers()
    rate = small.floor / 600 / 3  # the floor takes 30 minutes here
    with caplog.at_level(logging.WARNING, logger="plksr"):
        plan = _plan(10, {big.label: rate / 10, small.label: rate})
    assert (plan.tier, plan.total_iter) == (small, small.floor)
    assert f"{small.label} needs {small.floor} iterations, about 30.0 min here. Training that long." in caplog.text


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
