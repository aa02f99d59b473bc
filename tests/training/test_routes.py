"""Training routes (training.routes): every route gives the direct convolution's forward and gradients to 1e-5
relative, routed networks keep their parameters and keys, and the plans follow the option keys."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plksr_arch import PLKSR
from plksr_arch.runtime.accel import spectral_tile
from plksr_arch.training import routes
from plksr_arch.training.routes import Plan, RoutedConv2d, adopt_all, apply_routes, candidate_plans, plan_routes

from ..conftest import TINY_NET


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize(
    ("cin", "cout", "k", "shape", "route"),
    [
        (16, 16, 13, (4, 48, 48), "spectral"),
        (16, 16, 17, (2, 48, 48), "spectral"),
        (16, 16, 17, (1, 140, 70), "spectral"),  # overlap-save: more than one FFT window
        (8, 8, 7, (2, 9, 13), "spectral"),
        (64, 128, 3, (2, 24, 24), "nhwc"),
        (128, 64, 3, (2, 24, 24), "nchw"),
        (3, 16, 3, (2, 24, 24), "nhwc"),
        (16, 16, 1, (2, 24, 24), "nhwc"),
    ],
)
def test_route_matches_the_direct_convolution(cin, cout, k, shape, route) -> None:
    """Forward, input gradient, weight and bias gradients of each route against `conv2d` on random inputs."""
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, padding=k // 2)
    nn.init.normal_(conv.weight, std=0.05)
    nn.init.normal_(conv.bias, std=0.05)
    x = torch.randn(shape[0], cin, *shape[1:], requires_grad=True)
    grad = torch.randn(shape[0], cout, *shape[1:])
    routed = RoutedConv2d.adopt(conv)
    routed.route = route
    want = F.conv2d(x, conv.weight, conv.bias, padding=k // 2)
    got = routed(x)
    assert got.shape == want.shape
    assert _rel(got, want) < 1e-5
    for g, w in zip(
        torch.autograd.grad(got, [x, conv.weight, conv.bias], grad),
        torch.autograd.grad(want, [x, conv.weight, conv.bias], grad),
        strict=True,
    ):
        assert _rel(g, w) < 1e-5


def test_spectral_tile_holds_a_training_patch_in_one_window() -> None:
    assert spectral_tile(48, 48, 13) == 64
    assert spectral_tile(48, 48, 17) == 64
    assert spectral_tile(96, 96, 17) == 128
    assert spectral_tile(200, 120, 17) == 64  # too large for one window: overlap-save tiles


def test_adopting_keeps_parameters_keys_and_the_random_stream() -> None:
    torch.manual_seed(0)
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2)
    params = {name: p for name, p in net.named_parameters()}
    keys = list(net.state_dict())
    state = torch.random.get_rng_state()
    adopt_all(net)
    assert torch.equal(torch.random.get_rng_state(), state)  # built on the meta device: no draws
    assert list(net.state_dict()) == keys
    assert all(p is params[name] for name, p in net.named_parameters())
    assert all(type(m) is not nn.Conv2d for m in net.modules())
    large = [name for name, conv in routes.routed(net).items() if conv.spectral_ok]
    assert large == ["feats.1.lk.conv", "feats.2.lk.conv"]


@pytest.mark.parametrize(
    "plan", [Plan("nchw", "nchw"), Plan("nchw", "nhwc"), Plan("nhwc", "nhwc"), Plan("nchw", "spectral")]
)
def test_routed_network_matches_the_plain_one(plan: Plan) -> None:
    torch.manual_seed(0)
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2)
    x = torch.rand(2, 3, 20, 20)
    want = net(x)
    want_grads = torch.autograd.grad(want.abs().mean(), list(net.parameters()))
    adopt_all(net)
    apply_routes(net, plan.routes(net))
    got = net(x)
    assert _rel(got, want) < 1e-5
    grads = torch.autograd.grad(got.abs().mean(), list(net.parameters()))
    assert max(_rel(g, w) for g, w in zip(grads, want_grads, strict=True)) < 1e-5


def test_candidate_plans_follow_the_option_keys() -> None:
    auto = candidate_plans(True, None, "auto")
    assert auto == [
        Plan("nchw", "nchw"),
        Plan("nchw", "nhwc"),
        Plan("nhwc", "nhwc"),
        Plan("nchw", "spectral"),
        Plan("nhwc", "spectral"),
    ]
    assert candidate_plans(True, False, "direct") == [Plan("nchw", "nchw")]
    assert candidate_plans(True, True, "auto") == [Plan("nhwc", "nhwc"), Plan("nhwc", "spectral")]
    assert candidate_plans(True, None, "spectral") == [Plan("nchw", "spectral"), Plan("nhwc", "spectral")]
    assert candidate_plans(False, None, "auto") == [Plan("nchw", "nchw"), Plan("nhwc", "nhwc")]


def test_plan_routes_times_the_allowed_plans_and_logs_them(caplog) -> None:
    torch.manual_seed(0)
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2)
    adopt_all(net)
    before = [p.detach().clone() for p in net.parameters()]
    x = torch.rand(2, 3, 16, 16)
    with caplog.at_level("INFO", logger="plksr"):
        plan = plan_routes(net, x, contextlib.nullcontext, "fp32", channels_last=None, large_kernel="auto")
    assert set(plan) == set(routes.routed(net))
    lines = [r.getMessage() for r in caplog.records if "training routes" in r.getMessage()]
    left_out = [line for line in lines if "left out" in line]  # more memory than direct NCHW
    assert left_out and all("spectral" in line for line in left_out)
    assert "forward + backward of 2x16x16" in lines[-1] and lines[-1].count(" ms") == 5 - len(left_out)
    assert "large kernels spectral" not in lines[-1]
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before, strict=True))
    assert all(p.grad is None for p in net.parameters())
    fixed = plan_routes(net, x, contextlib.nullcontext, "fp32", channels_last=False, large_kernel="direct")
    assert set(fixed.values()) == {"nchw"}


def test_apply_routes_refuses_a_plan_of_another_network() -> None:
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2)
    adopt_all(net)
    with pytest.raises(ValueError, match="names 1 convolutions"):
        apply_routes(net, {"feats.0": "nchw"})
    plan = Plan("nchw", "nchw").routes(net)
    with pytest.raises(ValueError, match="'fast' of feats.0"):
        apply_routes(net, {**plan, "feats.0": "fast"})


@pytest.mark.parametrize(
    ("precision", "channels_last", "large_kernel", "want"),
    [
        ("fp16", None, "auto", {"nhwc"}),
        ("fp32", None, "auto", {"nchw"}),
        ("bf16", False, "auto", {"nchw"}),
        ("fp32", True, "spectral", {"nhwc", "spectral"}),
    ],
)
def test_off_the_cpu_the_plan_follows_the_precision(precision, channels_last, large_kernel, want) -> None:
    """The CUDA rule, checked on a meta tensor (any device but the CPU): no pass is run or timed."""
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2)
    adopt_all(net)
    lq = torch.empty(2, 3, 16, 16, device="meta")
    keys = {"channels_last": channels_last, "large_kernel": large_kernel}
    plan = plan_routes(net, lq, contextlib.nullcontext, precision, **keys)
    assert set(plan.values()) == want


def test_saved_bytes_counts_what_backward_keeps() -> None:
    """A format change keeps no more than NCHW; the FFT route keeps its spectra too (so planning leaves it out)."""
    torch.manual_seed(0)
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2)
    adopt_all(net)
    x = torch.rand(1, 3, 24, 24)
    direct = routes.saved_bytes(net, Plan("nchw", "nchw"), x, contextlib.nullcontext)
    assert routes.saved_bytes(net, Plan("nhwc", "nhwc"), x, contextlib.nullcontext) <= direct
    assert routes.saved_bytes(net, Plan("nchw", "spectral"), x, contextlib.nullcontext) > direct
    assert direct >= 4 * 24 * 24 * 16 * 2 * 4  # at least each block's DCCM input and hidden map
