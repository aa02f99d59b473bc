"""The demo's choice of network and iteration count (plksr_arch.training.demo_pipeline)."""

from __future__ import annotations

import logging

import pytest

from plksr_arch.training.demo_pipeline import Plan, plan_training, tiers


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


def test_real_demo_options_validate_with_real_esrgans_degradations(tmp_path) -> None:
    """demo_real.yml, completed as `plksr demo --real` completes it, is a valid RealESRNetModel run whose
    degradation settings are Real-ESRGAN's x4plus ones (gt_usm off: the plain GT is the target)."""
    import yaml

    from plksr_arch.training.degrade import recipe
    from plksr_arch.training.demo_pipeline import test_options, train_options
    from plksr_arch.training.options import load_options

    (tier,) = tiers(real=True)
    data = {k: str(tmp_path) for k in ("train_gt", "test_gt", "test_lq")} | {"meta_info": str(tmp_path / "m.txt")}
    (tmp_path / "m.txt").write_text("x.png\n")
    for scale in (2, 4):
        opt = train_options(data, scale, 900, tier, "fp32", real=True)
        (tmp_path / "t.yml").write_text(yaml.safe_dump(opt))
        loaded = load_options(str(tmp_path / "t.yml"), is_train=True, root=str(tmp_path))
        assert loaded["model_type"] == "PLKSRRealESRNetModel" and loaded["gt_size"] == tier.lr_patch * scale
        assert {k: loaded[k] for k in recipe()["model"] if k not in ("gt_size", "queue_size")} == {
            k: v for k, v in recipe()["model"].items() if k not in ("gt_size", "queue_size")
        }
        assert loaded["gt_usm"] is False and loaded["train"]["total_iter"] == 900
        test = test_options(data, scale, str(tmp_path / "w.pth"), tier, real=True)
        (tmp_path / "s.yml").write_text(yaml.safe_dump(test))
        tested = load_options(str(tmp_path / "s.yml"), is_train=False, root=str(tmp_path), check_paths=False)
        assert tested["model_type"] == "PLKSRModel" and tested["val"]["save_img"] is True
        assert all(
            m["test_y_channel"] is False and m["crop_border"] == scale for m in tested["val"]["metrics"].values()
        )
