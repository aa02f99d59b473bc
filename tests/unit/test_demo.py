"""The demo's choice of network and iteration count (plksr_arch.demo)."""

from __future__ import annotations

import logging

import pytest

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
