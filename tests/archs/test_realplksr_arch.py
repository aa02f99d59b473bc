"""RealPLKSR: output equality with spandrel's implementation on every variant, fp32 norms under autocast, training
through PLKSRModel, argument checks."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from plksr_arch import RealPLKSR, realplksr

from ..conftest import make_pairs, train_options, write_yaml

SMALL = {"dim": 16, "n_blocks": 2, "kernel_size": 7}
VARIANTS = [
    pytest.param(
        {"upscaling_factor": s, "dysample": d, "layer_norm": n, "use_ea": e}, id=f"x{s}-ds{d:d}-ln{n:d}-ea{e:d}"
    )
    for s, d, n, e in itertools.product([1, 2, 3, 4], [False, True], [False, True], [True, False])
]


@pytest.mark.parametrize("config", VARIANTS)
def test_same_keys_and_outputs_as_spandrel(config: dict) -> None:
    """Random weights (every parameter redrawn, so norms and DySample's zero-initialised scope matter) loaded
    strictly both ways; outputs equal in training (split path) and inference (in-place path) modes."""
    spandrel = pytest.importorskip("spandrel.architectures.PLKSR")
    theirs = spandrel.RealPLKSR(**SMALL, **config)
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_(0, 0.1)
    ours = RealPLKSR(**SMALL, **config)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    if config["dysample"]:
        assert torch.equal(ours.to_img.init_pos, theirs.to_img.init_pos)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.rand(2, 3, 11, 13)
    for training in (True, False):
        ours.train(training)
        theirs.train(training)
        with torch.no_grad():
            torch.testing.assert_close(ours(x.clone()), theirs(x.clone()), rtol=1e-5, atol=1e-5)


def test_norms_stay_fp32_under_low_precision_autocast() -> None:
    """GroupNorm and LayerNorm compute their statistics in fp32 under fp16/bf16 autocast and hand back the
    autocast dtype; a map whose fp16 variance would overflow stays finite."""
    for layer_norm in (False, True):
        net = RealPLKSR(**SMALL, upscaling_factor=2, layer_norm=layer_norm).eval()
        norm = net.feats[1].layer_norm if layer_norm else net.feats[1].norm
        x = torch.full((1, 16, 4, 4), 300.0, dtype=torch.float16)
        x[..., 0, 0] = -300.0
        for dtype in (torch.float16, torch.bfloat16):
            with torch.autocast("cpu", dtype=dtype):
                y = norm(x.to(dtype))
            assert y.dtype == dtype and torch.isfinite(y.float()).all()
            reference = norm(x.float())
            torch.testing.assert_close(y.float(), reference, rtol=2e-2, atol=2e-2)


def test_trains_with_plksr_model_under_amp(tmp_path: Path) -> None:
    from basicsr.models import build_model

    from plksr_arch.training.options import load_options

    network = {"type": "RealPLKSR", **SMALL, "dysample": True, "dropout": 0.1}
    opt = train_options(make_pairs(tmp_path / "data", 2, 2), use_amp=True, amp_dtype="bf16", channels_last=True)
    opt["network_g"] = {**network, "upscaling_factor": 2}
    model = build_model(load_options(str(write_yaml(tmp_path / "o.yml", opt)), is_train=True, root=str(tmp_path)))
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.feed_data({"lq": torch.rand(2, 3, 8, 8), "gt": torch.rand(2, 3, 16, 16)})
    model.optimize_parameters(1)
    assert torch.isfinite(torch.tensor(model.log_dict["l_pix"]))
    changed = [k for k, v in model.net_g.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == len(before) - 1  # all but DySample's init_pos buffer
    model.test()
    assert model.output.shape == (2, 3, 16, 16) and model.output.dtype == torch.float32


def test_preset_and_argument_checks() -> None:
    net = realplksr(2)
    assert net.hyperparameters["dim"] == 64 and net.hyperparameters["n_blocks"] == 28
    assert sum(p.numel() for p in net.parameters()) == 7_368_908
    with pytest.raises(ValueError, match="RealPLKSR: norm_groups=5 is invalid, expected a positive divisor of dim=16"):
        RealPLKSR(**SMALL, norm_groups=5)
    with pytest.raises(ValueError, match="RealPLKSR: dropout=1.5 is invalid"):
        RealPLKSR(**SMALL, dropout=1.5)
    with pytest.raises(TypeError):
        RealPLKSR(**SMALL, ccm_type="DCCM")
