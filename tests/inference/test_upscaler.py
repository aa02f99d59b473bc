"""Inference: self-ensemble, tiling with feathered overlap, Upscaler (precision, dtype and channel layout,
fp32 fallback, auto tiles), networks with and without PLKSR's mixed-precision methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from plksr_arch import PLKSR, PRESETS, Upscaler
from plksr_arch.inference.tiles import check_tiling, self_ensemble, tile_starts, tiled_forward

from ..conftest import TINY_NET, psnr

SMALL = {"dim": 16, "n_blocks": 2, "kernel_size": 7}


def _net(**kwargs) -> PLKSR:
    return PLKSR(**{**SMALL, **kwargs}).eval()


def _tiny(scale: int = 2) -> PLKSR:
    return PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=scale).eval()


def test_self_ensemble_is_the_mean_of_the_eight_transformed_outputs() -> None:
    net = _tiny()
    x = torch.rand(1, 3, 12, 16)
    # The dihedral group written out by hand: (forward transform, inverse transform) pairs.
    t = lambda y: y.transpose(-2, -1)  # noqa: E731
    h = lambda y: y.flip(-1)  # noqa: E731
    v = lambda y: y.flip(-2)  # noqa: E731
    pairs = [
        (lambda y: y, lambda y: y),
        (h, h),
        (v, v),
        (lambda y: h(v(y)), lambda y: v(h(y))),
        (t, t),
        (lambda y: h(t(y)), lambda y: t(h(y))),
        (lambda y: v(t(y)), lambda y: t(v(y))),
        (lambda y: h(v(t(y))), lambda y: t(v(h(y)))),
    ]
    with torch.no_grad():
        expected = torch.stack([inv(net(fwd(x))) for fwd, inv in pairs]).mean(0)
        got = self_ensemble(net, x)
        plain = net(x)
    assert got.shape == (1, 3, 24, 32)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got, plain, atol=1e-4)  # the eight outputs really differ


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(10, 16, 4), (16, 16, 4), (40, 16, 4), (41, 16, 0), (100, 24, 8)]
)
def test_tile_starts_cover_with_the_overlap(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == max(0, length - tile)
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))


def test_tiled_forward_is_exact_for_a_pointwise_network() -> None:
    x = torch.rand(2, 3, 37, 53)
    conv = torch.nn.Conv2d(3, 12, 1)
    fn = lambda y: F.pixel_shuffle(conv(y), 2)  # noqa: E731
    with torch.no_grad():
        torch.testing.assert_close(tiled_forward(fn, x, 2, 16, 6), fn(x), rtol=1e-5, atol=1e-5)


def test_tiled_plksr_agrees_with_whole_image() -> None:
    net = _tiny()
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        whole = net(x)
        tiled = tiled_forward(net, x, 2, 24, 8)
    assert tiled.shape == whole.shape
    assert psnr(tiled.clamp(0, 1), whole.clamp(0, 1)) >= 40


@pytest.mark.parametrize(
    ("tile", "overlap", "message"), [(4, 0, "tile: 4"), (32, 16, "tile_overlap: 16"), (32, -1, "-1")]
)
def test_bad_tiling_is_a_value_error_naming_the_argument(tile: int, overlap: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_tiling(tile, overlap)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((20, 24), np.uint8), ((20, 24, 1), np.uint8), ((20, 24, 3), np.uint8), ((20, 24, 4), np.uint16)],
)
def test_upscaler_keeps_dtype_and_channel_layout(shape: tuple, dtype) -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    up = Upscaler(_net(upscaling_factor=2), device="cpu", precision="fp32")
    out = up(img)
    assert out.dtype == dtype and out.shape == (40, 48, *shape[2:])
    if len(shape) == 3 and shape[2] == 4:  # alpha is bicubic-upscaled apart from the colour
        import cv2

        alpha = cv2.resize(img[..., 3].astype(np.float32) / 65535, (48, 40), interpolation=cv2.INTER_CUBIC)
        expected = (np.clip(alpha, 0, 1) * 65535).round().astype(np.uint16)
        np.testing.assert_array_equal(out[..., 3], expected)
    with pytest.raises(ValueError, match="dtype float32 is not supported"):
        up(img.astype(np.float32))
    with pytest.raises(ValueError, match="is not HxW or HxWxC"):
        up(np.zeros((4, 4, 2), np.uint8))


def test_upscaler_low_precision_agrees_with_fp32_and_keeps_the_skip_exact() -> None:
    torch.manual_seed(0)
    net = PLKSR(**PRESETS["PLKSR-tiny"], upscaling_factor=4).eval()
    x = torch.rand(1, 3, 24, 32)
    fp32 = Upscaler(net, "cpu", "fp32").upscale_tensor(x)
    bf16 = Upscaler(net, "cpu", "bf16").upscale_tensor(x)
    assert psnr(bf16.clamp(0, 1), fp32.clamp(0, 1)) >= 45
    with torch.no_grad():
        plain = net.to(memory_format=torch.contiguous_format)(x)
    torch.testing.assert_close(fp32, plain, rtol=1e-5, atol=1e-5)


def test_non_finite_low_precision_output_is_redone_in_fp32(caplog) -> None:
    net = _net(upscaling_factor=2)
    up = Upscaler(net, "cpu", "bf16", tile=16, tile_overlap=4)
    real_forward = up._forward

    def flaky(x: torch.Tensor, precision: str) -> torch.Tensor:
        y = real_forward(x, precision)
        return y * float("nan") if precision == "bf16" and x.shape[-1] == 16 and x[0, 0, 0, 0] > -1 else y

    up._forward = flaky
    out = up.upscale_tensor(torch.rand(1, 3, 16, 40))
    assert torch.isfinite(out).all() and up.fallbacks == 3  # every 16-px-wide tile fell back
    assert "is not finite: redone in fp32" in caplog.text


def test_tiled_upscaler_agrees_with_whole_image() -> None:
    torch.manual_seed(0)
    net = PLKSR(**PRESETS["PLKSR-tiny"], upscaling_factor=2).eval()
    x = torch.rand(1, 3, 64, 96)
    whole = Upscaler(net, "cpu", "fp32").upscale_tensor(x)
    tiled = Upscaler(net, "cpu", "fp32", tile=48, tile_overlap=16).upscale_tensor(x)
    assert psnr(tiled.clamp(0, 1), whole.clamp(0, 1)) >= 40


def test_auto_tile_follows_free_memory(monkeypatch) -> None:
    import plksr_arch.inference.upscaler as inference

    up = Upscaler(_net(upscaling_factor=4), "cpu", "fp32", tile="auto")
    monkeypatch.setattr(inference, "available_memory", lambda device: 1 << 40)
    assert up.auto_tile(540, 960) is None
    monkeypatch.setattr(inference, "available_memory", lambda device: 200 << 20)
    tile = up.auto_tile(540, 960)
    assert tile is not None and tile % 8 == 0 and 64 <= tile < 540
    assert tile * tile * up.model.activation_bytes_per_pixel(4) <= 100 << 20


class _PlainUpsampler(torch.nn.Module):
    """A network with neither `mixed_forward` nor a memory estimate, as peers and other archs are."""

    upscale = 2

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 12, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pixel_shuffle(self.conv(x), 2)


def test_a_network_without_the_plksr_methods_runs_plainly_and_tiles_conservatively(monkeypatch) -> None:
    import plksr_arch.inference.upscaler as inference

    net = _PlainUpsampler()
    x = torch.rand(1, 3, 20, 24)
    up = Upscaler(net, "cpu", "bf16", tile="auto")
    assert up.scale == 2
    out = up.upscale_tensor(x)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 40, 48)
    torch.testing.assert_close(out, net(x).detach(), atol=0.05, rtol=0)  # whole net under bf16 autocast
    monkeypatch.setattr(inference, "available_memory", lambda device: 2 * 4096 * 100 * 100)
    assert up.auto_tile(100, 100) is None and up.auto_tile(101, 100) == 96  # UNKNOWN_BYTES_PER_PIXEL per pixel


def test_plksr_mixed_forward_keeps_the_skip_in_fp32() -> None:
    net = _net(upscaling_factor=3)
    x = torch.rand(1, 3, 12, 10)
    torch.testing.assert_close(net.mixed_forward(x, None), net(x))
    with torch.no_grad():
        net.feats[-1].weight.zero_()
        net.feats[-1].bias.zero_()
    nearest = torch.nn.functional.interpolate(x, scale_factor=3, mode="nearest")
    assert torch.equal(net.mixed_forward(x, torch.bfloat16), nearest)  # a zero residual leaves the exact skip
    assert net.activation_bytes_per_pixel(2) < net.activation_bytes_per_pixel(4)


def test_upscaler_arch_options_build_what_a_file_does_not_store(tmp_path) -> None:
    """`arch_options` reach `load_model` for weights files without stored arguments (RealPLKSR norm_groups 8 here);
    for a built model they are an error: it has its arguments."""
    from plksr_arch import RealPLKSR
    from plksr_arch.errors import UserError

    net = RealPLKSR(dim=16, n_blocks=1, kernel_size=5, upscaling_factor=2, norm_groups=8).eval()
    torch.save({"params": net.state_dict()}, tmp_path / "w.pth")
    upscaler = Upscaler(str(tmp_path / "w.pth"), "cpu", "fp32", arch_options={"norm_groups": 8})
    assert upscaler.model.hyperparameters["norm_groups"] == 8
    with pytest.raises(UserError, match="arch_options: only for weights files"):
        Upscaler(net, "cpu", "fp32", arch_options={"norm_groups": 8})
