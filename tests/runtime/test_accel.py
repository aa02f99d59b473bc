"""Faster inference routes (accel): the spectral PLKC against the direct convolution, the measured choice between
them, the Upscaler's own model copy, and the compiled pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from plksr_arch import PLKSR, RealPLKSR, Upscaler
from plksr_arch.errors import UserError
from plksr_arch.runtime import accel
from plksr_arch.runtime.accel import SpectralConv2d, accelerate, large_kernel_route, spectral_candidate

from ..conftest import TINY_NET

CPU = torch.device("cpu")


def _conv(cin: int, cout: int, k: int, seed: int = 0) -> nn.Conv2d:
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, k, padding=k // 2)
    nn.init.normal_(conv.weight, std=0.05)
    return conv


@pytest.mark.parametrize(
    ("k", "cin", "cout", "shape"),
    [(17, 16, 16, (1, 45, 50)), (13, 16, 16, (2, 64, 64)), (7, 4, 6, (1, 5, 9)), (17, 8, 8, (1, 200, 131))],
)
def test_spectral_conv_equals_the_direct_convolution(k: int, cin: int, cout: int, shape: tuple[int, ...]) -> None:
    """Images smaller than a tile, exact multiples of the step, odd sizes, batches and unequal channel counts."""
    conv = _conv(cin, cout, k)
    x = torch.rand(shape[0], cin, *shape[1:])
    with torch.no_grad():
        assert torch.allclose(SpectralConv2d(conv)(x), conv(x), atol=2e-5, rtol=1e-5)


def test_spectral_conv_takes_channels_last_slices_and_low_precision() -> None:
    """PLKC passes a channel slice of a channels_last map; under bf16 autocast it computes in fp32 and returns bf16."""
    conv = _conv(16, 16, 17)
    full = torch.rand(1, 64, 40, 70).contiguous(memory_format=torch.channels_last)
    x = full[:, :16]
    spectral = SpectralConv2d(conv)
    with torch.no_grad():
        reference = conv(x)
        assert torch.allclose(spectral(x), reference, atol=2e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = spectral(x.bfloat16())
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), reference, atol=0.05)


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(4, 4, 7, stride=2, padding=3),
        nn.Conv2d(4, 4, 7, padding=6, dilation=2),
        nn.Conv2d(4, 4, (7, 3), padding=(3, 1)),
        nn.Conv2d(4, 4, 7, padding=3, groups=2),
        nn.Conv2d(4, 4, 7, padding=3, padding_mode="reflect"),
        nn.Conv2d(4, 4, 6, padding=3),
    ],
)
def test_spectral_conv_refuses_what_it_cannot_compute(conv: nn.Conv2d) -> None:
    assert not spectral_candidate(conv)
    with pytest.raises(ValueError, match="SpectralConv2d"):
        SpectralConv2d(conv)


def test_small_kernels_are_not_candidates() -> None:
    assert not spectral_candidate(nn.Conv2d(4, 4, 3, padding=1))
    assert spectral_candidate(nn.Conv2d(4, 4, 7, padding=3))


@pytest.mark.parametrize("network", ["PLKSR", "RealPLKSR"])
def test_accelerate_swaps_every_plkc_and_keeps_the_output(network: str) -> None:
    torch.manual_seed(0)
    if network == "PLKSR":
        net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2).eval()
    else:
        net = RealPLKSR(dim=16, n_blocks=2, kernel_size=9, upscaling_factor=2).eval()
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        reference = net(x)
        routes = accelerate(net, "fp32", CPU, "spectral")
        assert set(routes) == {"feats.1.lk.conv", "feats.2.lk.conv"} and set(routes.values()) == {"spectral"}
        assert all(isinstance(block.lk.conv, SpectralConv2d) for block in net.feats[1:3])
        assert torch.allclose(net(x), reference, atol=1e-5)


def test_direct_keeps_the_convolutions_and_a_bad_route_is_refused() -> None:
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"})
    assert set(accelerate(net, "fp32", CPU, "direct").values()) == {"direct"}
    assert type(net.feats[1].lk.conv) is nn.Conv2d
    with pytest.raises(UserError, match="large_kernel: 'fft' is not one of auto, direct, spectral"):
        accelerate(net, "fp32", CPU, "fft")


@pytest.mark.parametrize(("direct_ms", "spectral_ms", "expected"), [(10.0, 2.0, "spectral"), (2.0, 10.0, "direct")])
def test_auto_takes_the_route_measured_faster(monkeypatch, direct_ms: float, spectral_ms: float, expected: str) -> None:
    """The choice follows the timings (faked here: speed is the machine's), is made once per shape and precision,
    and on a GPU is `direct` without timing."""
    timings = iter([direct_ms, spectral_ms])
    monkeypatch.setattr(accel, "_routes", {})
    monkeypatch.setattr(accel, "time_runs", lambda run, device, warmup, runs: next(timings))
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"})
    assert set(accelerate(net, "fp32", CPU, "auto").values()) == {expected}  # two PLKCs, one measurement
    assert large_kernel_route(nn.Conv2d(16, 16, 9, padding=4), "fp32", torch.device("cuda")) == ("direct", 0.0, 0.0)


def test_upscaler_leaves_the_callers_model_alone_and_routes_agree() -> None:
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2).eval()
    img = (torch.rand(30, 26, 3) * 255).to(torch.uint8).numpy()
    spectral = Upscaler(net, "cpu", "fp32", large_kernel="spectral")
    direct = Upscaler(net, "cpu", "fp32", large_kernel="direct")
    assert type(net.feats[1].lk.conv) is nn.Conv2d and net.feats[0].weight.is_contiguous()
    assert set(spectral.routes.values()) == {"spectral"} and set(direct.routes.values()) == {"direct"}
    diff = spectral(img).astype(int) - direct(img).astype(int)
    assert abs(diff).max() <= 1


@pytest.mark.slow
def test_compiled_pass_equals_eager_and_compiles_once_per_size() -> None:
    """torch.compile with inductor's freezing, the spectral PLKC inside the graph as one custom operator."""
    torch.manual_seed(0)
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2).eval()
    compiled = Upscaler(net, "cpu", "fp32", large_kernel="spectral", compile=True)
    eager = Upscaler(net, "cpu", "fp32", large_kernel="spectral")
    for shape in [(1, 3, 16, 20), (1, 3, 16, 20), (2, 3, 12, 12)]:
        x = torch.rand(shape)
        assert torch.allclose(compiled.forward(x), eager.forward(x), atol=1e-5)
    assert list(compiled.warmups) == [(1, 3, 16, 20), (2, 3, 12, 12)]
    assert all(seconds > 0 for seconds in compiled.warmups.values()) and eager.warmups == {}
