"""PLKSR architecture: shapes, official keys, parameter counts, initial weights, inference paths, re-param."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from plksr_arch import PLKSR, PRESETS, plksr, plksr_tiny
from plksr_arch.archs.plksr_arch import PLKConv2d, SparsePLKConv2d, trunc_normal_
from plksr_arch.runtime.device import cpu_isa

from ..conftest import shared

SMALL = {"dim": 16, "n_blocks": 2, "kernel_size": 7}
VARIANTS = [
    pytest.param({}, id="PLK"),
    pytest.param({"with_idt": True}, id="PLK-idt"),
    pytest.param({"use_ea": False, "ccm_type": "CCM"}, id="CCM-noEA"),
    pytest.param({"ccm_type": "ICCM"}, id="ICCM"),
    pytest.param({"lk_type": "SparsePLK", "sparse_kernels": [3, 3], "sparse_dilations": [1, 3]}, id="SparsePLK"),
    pytest.param(
        {
            "lk_type": "SparsePLK",
            "use_max_kernel": True,
            "with_idt": True,
            "sparse_kernels": [5, 3],
            "sparse_dilations": [1, 4],
        },
        id="SparsePLK-max-idt",
    ),
    pytest.param({"lk_type": "RectSparsePLK", "kernel_size": 9}, id="RectSparsePLK"),
    pytest.param({"is_coreml": True}, id="coreml"),
]


def _randomise_biases(net: torch.nn.Module) -> None:
    """Non-zero biases so that every parameter influences the output in equality tests."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.05)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shape(scale: int) -> None:
    net = PLKSR(**SMALL, upscaling_factor=scale).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 11, 13)).shape == (2, 3, 11 * scale, 13 * scale)


@pytest.mark.parametrize(
    ("factory", "counts"),
    [(plksr, (7_365_324, 7_373_979, 7_386_096)), (plksr_tiny, (2_349_772, 2_358_427, 2_370_544))],
)
def test_released_parameter_counts(factory, counts: tuple[int, int, int]) -> None:
    for scale, expected in zip((2, 3, 4), counts, strict=True):
        assert sum(p.numel() for p in factory(scale).parameters()) == expected


def test_defaults_are_the_paper_model() -> None:
    default = PLKSR()
    assert sum(p.numel() for p in default.parameters()) == 7_386_096
    assert PRESETS["PLKSR"] == {"dim": 64, "n_blocks": 28, "kernel_size": 17, "use_ea": True}


@pytest.mark.parametrize("use_ea", [True, False])
def test_official_state_dict_keys(use_ea: bool) -> None:
    n = 3
    keys = set(PLKSR(dim=8, n_blocks=n, kernel_size=5, use_ea=use_ea, upscaling_factor=2).state_dict())
    expected = {f"feats.{i}.{p}" for i in (0, n + 1) for p in ("weight", "bias")}
    for i in range(1, n + 1):
        mods = ["channe_mixer.0", "channe_mixer.2", "lk.conv", "refine"] + (["attn.f.0"] if use_ea else [])
        expected |= {f"feats.{i}.{m}.{p}" for m in mods for p in ("weight", "bias")}
    assert keys == expected


def test_sparse_and_rect_keys() -> None:
    sparse = PLKSR(**SMALL, lk_type="SparsePLK", use_max_kernel=True).state_dict()
    assert {k for k in sparse if k.startswith("feats.1.lk.")} == {
        f"feats.1.lk.convs.{i}.{p}" for i in range(5) for p in ("weight", "bias")
    }
    # k_max = max(7, (5 - 1) * 4 + 1) = 17 for the default sparse kernels [5]*4 with dilations [1, 2, 3, 4]
    assert sparse["feats.1.lk.convs.4.weight"].shape == (4, 4, 17, 17)
    rect = PLKSR(**{**SMALL, "kernel_size": 9}, lk_type="RectSparsePLK").state_dict()
    assert rect["feats.1.lk.mn_conv.weight"].shape == (4, 4, 9, 3)
    assert rect["feats.1.lk.nm_conv.weight"].shape == (4, 4, 3, 9)
    assert rect["feats.1.lk.nn_conv.weight"].shape == (4, 4, 3, 3)


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_train_and_inference_paths_agree(kwargs: dict) -> None:
    net = PLKSR(**{**SMALL, **kwargs}, upscaling_factor=2)
    _randomise_biases(net)
    x = torch.rand(1, 3, 12, 10)
    given = x.clone()
    net.eval()
    with torch.no_grad():
        in_place = net(x)  # autograd off: PLKC, activations, EA and residuals written into fresh maps
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low_in_place = net(x)
    with torch.enable_grad():
        split = net(x)  # autograd on (eval mode with gradients): split + concat, nothing in place
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low_split = net(x)
    net.train()
    with torch.no_grad():
        train_mode = net(x)
    torch.testing.assert_close(in_place, split.detach(), rtol=0, atol=0)
    torch.testing.assert_close(in_place, train_mode, rtol=0, atol=0)
    torch.testing.assert_close(low_in_place, low_split.detach(), rtol=0, atol=0)
    assert torch.equal(x, given)  # the caller's input is never written


def test_eval_mode_backward() -> None:
    net = PLKSR(**SMALL, upscaling_factor=2).eval()
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    net(x).mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in net.parameters())


def test_inference_path_leaves_input_untouched() -> None:
    net = PLKSR(**SMALL, upscaling_factor=2).eval()
    x = torch.rand(1, 3, 8, 8)
    before = x.clone()
    with torch.inference_mode():
        net(x)
    assert torch.equal(x, before)


def test_global_skip_is_nearest_neighbour_upsample() -> None:
    net = PLKSR(**SMALL, upscaling_factor=3).eval()
    with torch.no_grad():
        net.feats[-1].weight.zero_()
        net.feats[-1].bias.zero_()
        x = torch.rand(1, 3, 5, 7)
        torch.testing.assert_close(net(x), F.interpolate(x, scale_factor=3, mode="nearest"), rtol=0, atol=0)


@pytest.mark.parametrize("kwargs", [k for k in VARIANTS if k.id in ("PLK-idt", "SparsePLK", "SparsePLK-max-idt")])
def test_convert_keeps_outputs(kwargs: dict) -> None:
    net = PLKSR(**{**SMALL, **kwargs}, upscaling_factor=2).eval()
    _randomise_biases(net)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        before = net(x)
        net.convert()
        after = net(x)
        net.convert()  # idempotent
        again = net(x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(again, after, rtol=0, atol=0)
    lk_keys = {k for k in net.state_dict() if k.startswith("feats.1.lk.")}
    assert lk_keys == {"feats.1.lk.conv.weight", "feats.1.lk.conv.bias"}


def test_sparse_convert_kernel_size_is_k_max() -> None:
    lk = SparsePLKConv2d(4, 7, [5, 3], [1, 4], use_max_kernel=False, with_idt=False)
    lk.convert()
    assert lk.conv.kernel_size == (9, 9)  # max(7, (3 - 1) * 4 + 1)


def test_plk_convert_folds_identity() -> None:
    lk = PLKConv2d(4, 5, with_idt=True)
    x = torch.rand(1, 6, 9, 9)
    expected = torch.cat([lk.conv(x[:, :4]) + x[:, :4], x[:, 4:]], 1)
    lk.convert()
    assert not lk.with_idt
    with torch.no_grad():
        torch.testing.assert_close(lk(x.clone()), expected.detach(), rtol=1e-5, atol=1e-6)


def test_coreml_skip_matches_repeat_interleave() -> None:
    a = PLKSR(**SMALL, upscaling_factor=4)
    b = PLKSR(**SMALL, upscaling_factor=4, is_coreml=True)
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=0, atol=0)


FINGERPRINT = Path(__file__).resolve().parent.parent / "data" / "official_init_fingerprint.json"


def _fingerprint() -> dict:
    return json.loads(FINGERPRINT.read_text())["models"]


@pytest.mark.parametrize("name", ["PLKSR_x4", "PLKSR-tiny_x4", "small_seed10"])
def test_initial_weights_are_the_official_codes(name: str) -> None:
    """After `torch.manual_seed(seed)`, PLKSR(**config) holds what the official code's PLKSR holds (fingerprint taken
    from the official code with torch 2.14.1: keys in order, float64 sum and sum of squares, first values)."""
    entry = _fingerprint()[name]
    torch.manual_seed(entry["seed"])
    state = PLKSR(**entry["config"]).state_dict()
    assert list(state) == list(entry["tensors"])
    for key, tensor in state.items():
        expected, values = entry["tensors"][key], tensor.double()
        assert values.sum().item() == pytest.approx(expected["sum"], rel=1e-9, abs=1e-9), key
        assert (values * values).sum().item() == pytest.approx(expected["sumsq"], rel=1e-9, abs=1e-9), key
        assert values.flatten()[:4].tolist() == pytest.approx(expected["first"], abs=1e-8), key


@pytest.mark.skipif(cpu_isa() != "avx2", reason="the official SHA-256 was taken on an AVX2 CPU")
@pytest.mark.parametrize("name", ["PLKSR_x4", "PLKSR-tiny_x4", "small_seed10"])
def test_initial_weights_bytes_match_the_official_sha256(name: str) -> None:
    """Bit for bit on the CPU class the fingerprint was taken on (vectorised erfinv may differ in the last bit on
    others, which the sums above tolerate)."""
    entry = _fingerprint()[name]
    torch.manual_seed(entry["seed"])
    digest = hashlib.sha256()
    for key, tensor in PLKSR(**entry["config"]).state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.float().contiguous().numpy().tobytes())
    assert digest.hexdigest() == entry["sha256_of_keys_and_float32_bytes"]


def test_fingerprint_copy_matches_shared_reference() -> None:
    """tests/data holds the fingerprint so that the test runs anywhere; it is ../shared/references' file unchanged."""
    assert FINGERPRINT.read_bytes() == shared("references/official_init_fingerprint.json").read_bytes()


@pytest.mark.parametrize(("mean", "std", "a", "b"), [(0.0, 0.02, -2.0, 2.0), (0.5, 1.0, -0.5, 1.5)])
def test_trunc_normal_draws_what_basicsr_draws(mean: float, std: float, a: float, b: float) -> None:
    """Our inverse-CDF sampler is basicsr's (the official code's), not torch's rejection sampler."""
    from basicsr.archs.arch_util import trunc_normal_ as basicsr_trunc_normal_

    ours, theirs = torch.empty(64, 33), torch.empty(64, 33)
    torch.manual_seed(3)
    trunc_normal_(ours, mean, std, a, b)
    torch.manual_seed(3)
    basicsr_trunc_normal_(theirs, mean, std, a, b)
    assert torch.equal(ours, theirs)
    assert a <= ours.min() and ours.max() <= b


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"kernel_size": 4}, "kernel_size"),
        ({"ccm_type": "XCCM"}, "ccm_type"),
        ({"lk_type": "Big"}, "lk_type"),
        ({"split_ratio": 0.01}, "split_ratio"),
        ({"split_ratio": 1.5}, "split_ratio"),
        ({"dim": "64"}, "dim"),
        ({"kernel_size": 17.0}, "kernel_size"),
        ({"lk_type": "RectSparsePLK", "kernel_size": 1}, "kernel_size"),
        ({"dim": 0}, "dim"),
        ({"upscaling_factor": 0}, "upscaling_factor"),
        ({"sparse_kernels": [5], "sparse_dilations": [1, 2]}, "sparse_dilations"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=rf"PLKSR: {name}="):
        PLKSR(**kwargs)


def test_unknown_keyword_is_rejected() -> None:
    with pytest.raises(TypeError, match="use_pa"):
        PLKSR(use_pa=False)


def test_every_instance_keeps_its_constructor_keywords() -> None:
    import inspect

    from basicsr.archs import build_network

    net = PLKSR(
        dim=16, n_blocks=2, kernel_size=7, upscaling_factor=3, lk_type="SparsePLK", sparse_dilations=(1, 2, 3, 4)
    )
    params = inspect.signature(PLKSR.__init__).parameters
    assert list(net.hyperparameters) == [name for name in params if name != "self"]
    assert net.hyperparameters["dim"] == 16 and net.hyperparameters["upscaling_factor"] == 3
    assert net.hyperparameters["use_ea"] is True  # the default, filled in
    assert PLKSR(**net.hyperparameters).hyperparameters == net.hyperparameters  # rebuilds the same network
    built = build_network({"type": "PLKSR", "dim": 16, "n_blocks": 1, "kernel_size": 5, "upscaling_factor": 2})
    assert built.hyperparameters["n_blocks"] == 1 and built.hyperparameters["ccm_type"] == "DCCM"
