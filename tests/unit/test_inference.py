"""load_model on every layout, configuration detection, Upscaler precision/dtype/channel handling and tiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from plksr_arch import PLKSR, PRESETS, Upscaler, load_model
from plksr_arch.checkpoint import CheckpointError, detect_config, read_state_dict, save_weights

from ..conftest import psnr

SMALL = {"dim": 16, "n_blocks": 2, "kernel_size": 7}


def _net(**kwargs) -> PLKSR:
    return PLKSR(**{**SMALL, **kwargs}).eval()


@pytest.mark.parametrize(
    "config",
    [
        {"upscaling_factor": 2},
        {"upscaling_factor": 3, "ccm_type": "CCM", "use_ea": False},
        {"upscaling_factor": 4, "ccm_type": "ICCM", "split_ratio": 0.5},
        {"upscaling_factor": 1, "lk_type": "RectSparsePLK", "kernel_size": 9},
        {"upscaling_factor": 2, "n_blocks": 3, "dim": 24, "kernel_size": 5, "split_ratio": 0.125 * 2},
    ],
)
def test_detect_config_round_trips(config: dict) -> None:
    net = _net(**config)
    detected = detect_config(net.state_dict())
    rebuilt = PLKSR(**detected)
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    expected = {**SMALL, "ccm_type": "DCCM", "lk_type": "PLK", "split_ratio": 0.25, "use_ea": True, **config}
    assert {k: detected[k] for k in expected} == expected


@pytest.mark.parametrize("name", ["PLKSR", "PLKSR-tiny"])
def test_released_presets_are_detected(name: str) -> None:
    state = PLKSR(**PRESETS[name], upscaling_factor=3).state_dict()
    config = detect_config(state)
    assert {k: config[k] for k in PRESETS[name]} == PRESETS[name] and config["upscaling_factor"] == 3


def test_load_model_reads_every_layout(tmp_path: Path) -> None:
    net = _net(upscaling_factor=2)
    other = _net(upscaling_factor=2)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        expected, other_out = net(x), other(x)
    state = net.state_dict()
    layouts = {
        "raw.pth": state,
        "params.pth": {"params": state},
        "ema.pth": {"params": other.state_dict(), "params_ema": state},  # EMA wins, as BasicSR's tests load it
        "ddp.pth": {"params": {f"module.{k}": v for k, v in state.items()}},
    }
    for file, data in layouts.items():
        torch.save(data, tmp_path / file)
    save_weights(net, str(tmp_path / "w.safetensors"))
    for file in [*layouts, "w.safetensors"]:
        model = load_model(str(tmp_path / file))
        assert not model.training
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected, msg=file)
    model = load_model(str(tmp_path / "ema.pth"), param_key="params")
    with torch.no_grad():
        torch.testing.assert_close(model(x), other_out)
    torch.testing.assert_close(load_model(state)(x).detach(), expected)


def test_load_model_refuses_pickled_objects_and_bad_weights(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    torch.save({"params": _net().state_dict(), "opt": Path("x")}, evil)
    with pytest.raises(CheckpointError, match=r"evil.pth: not a readable weights file \(UnpicklingError"):
        load_model(str(evil))
    with pytest.raises(FileNotFoundError, match="nope.pth: no such weights file"):
        load_model(str(tmp_path / "nope.pth"))
    with pytest.raises(CheckpointError, match="missing 'feats.0.weight': not a PLKSR state dict"):
        load_model({"conv.weight": torch.zeros(1)})
    state = _net().state_dict()
    state["feats.1.refine.weight"] = torch.zeros(3, 3, 1, 1)
    with pytest.raises(CheckpointError, match="weights do not fit PLKSR"):
        load_model(state)
    with pytest.raises(CheckpointError, match="no 'params' entry"):
        read_state_dict({"params_ema": _net().state_dict()}, param_key="params")


def test_sparse_plk_needs_its_dilations_but_loads_once_converted() -> None:
    net = _net(lk_type="SparsePLK", kernel_size=9, sparse_kernels=(3, 3), sparse_dilations=(1, 4))
    with pytest.raises(CheckpointError, match="pass sparse_dilations"):
        load_model(net.state_dict())
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        expected = net(x)
        loaded = load_model(net.state_dict(), sparse_dilations=(1, 4), kernel_size=9)
        torch.testing.assert_close(loaded(x), expected, rtol=1e-4, atol=1e-5)
        converted = load_model(net.convert().state_dict())  # a converted SparsePLK is a PLK
        torch.testing.assert_close(converted(x), expected, rtol=1e-4, atol=1e-5)


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
    import plksr_arch.inference as inference

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
    import plksr_arch.inference as inference

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


def test_infer_inputs_and_output_names(tmp_path: Path) -> None:
    from plksr_arch.cli.infer import collect_inputs, output_path

    (tmp_path / "a").mkdir()
    for name in ("a/x.png", "a/y.JPG", "a/notes.txt", "z.webp"):
        (tmp_path / name).write_bytes(b"")
    files, problems = collect_inputs([str(tmp_path / "a"), str(tmp_path / "*.webp"), str(tmp_path / "a" / "x.png")])
    assert [Path(f).name for f in files] == ["x.png", "y.JPG", "z.webp"]  # folders, globs, no duplicates
    assert problems == []
    assert collect_inputs([str(tmp_path / "none*.png")])[1] == [f"{tmp_path / 'none*.png'}: no image files found"]
    assert output_path("in/p.jpg", "out", sixteen_bit=False) == "out/p.jpg"
    assert output_path("in/p.jpg", "out", sixteen_bit=True) == "out/p.png"  # JPEG cannot hold 16 bits
    assert output_path("in/p.tif", "out", sixteen_bit=True) == "out/p.tif"
