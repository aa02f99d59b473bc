"""PLKSRModel: AMP, channels_last, EMA, optimizers and fp32 testing on the CPU, through BasicSR's build_model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plksr_arch import PLKSRModel
from plksr_arch.training.options import load_options

from ..conftest import make_pairs, train_options, write_yaml


def _model(tmp_path: Path, **top) -> PLKSRModel:
    from basicsr.models import build_model

    opt = train_options(make_pairs(tmp_path / "data", 2, 2), **top)
    opt = load_options(str(write_yaml(tmp_path / "opt.yml", opt)), is_train=True, root=str(tmp_path))
    return build_model(opt)


def _batch() -> dict:
    lq, gt = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    return {"lq": lq, "gt": gt}


@pytest.mark.parametrize(("use_amp", "channels_last"), [(False, False), (True, True)])
def test_training_step_updates_weights(tmp_path, use_amp: bool, channels_last: bool) -> None:
    model = _model(tmp_path, use_amp=use_amp, amp_dtype="bf16", channels_last=channels_last)
    assert model.device.type == "cpu"
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.feed_data(_batch())
    model.optimize_parameters(1)
    assert model.log_dict["l_pix"] > 0
    changed = [k for k, v in model.net_g.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == len(before)
    assert model.lq.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert model.net_g.feats[0].weight.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert all(p.dtype == torch.float32 for p in model.net_g.parameters())  # AMP keeps fp32 master weights


def test_no_autocast_without_amp(tmp_path) -> None:
    model = _model(tmp_path, amp_dtype="fp16")
    assert model.amp_dtype is None and not model.use_amp and not model.scalers[0].is_enabled()
    model.feed_data(_batch())
    model.optimize_parameters(1)
    assert model.output.dtype == torch.float32


def test_test_outputs_fp32_even_with_amp_training(tmp_path) -> None:
    model = _model(tmp_path, use_amp=True, amp_dtype="bf16")
    model.feed_data(_batch())
    model.test()
    assert model.output.dtype == torch.float32 and model.output.shape == (2, 3, 16, 16)
    assert model.net_g.training  # restored after testing


def test_validation_amp_keeps_the_global_skip_in_fp32(tmp_path) -> None:
    from basicsr.models import build_model

    opt = train_options(make_pairs(tmp_path / "data", 2, 2), amp_dtype="bf16")
    opt["val"] = {"val_freq": 2, "use_amp": True}
    model = build_model(load_options(str(write_yaml(tmp_path / "o.yml", opt)), is_train=True, root=str(tmp_path)))
    net = model.net_g
    with torch.no_grad():  # a zero residual: the output is the input repeated, exactly, whatever the precision
        net.feats[-1].weight.zero_()
        net.feats[-1].bias.zero_()
    lq = torch.rand(1, 3, 8, 8) * 0.9 + 0.05
    model.feed_data({"lq": lq})
    model.test()
    assert model.val_amp and model.output.dtype == torch.float32
    torch.testing.assert_close(model.output, torch.nn.functional.interpolate(lq, scale_factor=2, mode="nearest"))


def test_ema_and_adamw(tmp_path) -> None:
    opt = train_options(make_pairs(tmp_path / "data", 2, 2))
    opt["train"]["ema_decay"] = 0.9
    opt["train"]["optim_g"] = {"type": "AdamW", "lr": 1e-3, "weight_decay": 0.01}
    from basicsr.models import build_model

    model = build_model(load_options(str(write_yaml(tmp_path / "o.yml", opt)), is_train=True, root=str(tmp_path)))
    assert isinstance(model.optimizer_g, torch.optim.AdamW)
    ema_before = model.net_g_ema.feats[0].weight.clone()
    model.feed_data(_batch())
    model.optimize_parameters(1)
    ema, net = model.net_g_ema.feats[0].weight, model.net_g.feats[0].weight
    torch.testing.assert_close(ema, 0.9 * ema_before + 0.1 * net.detach())


def test_official_model_type_builds_plksr_model(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PLKSR_CPU_ISA", "amx")  # AMP is on only where it is native
    model = _model(tmp_path, model_type="ESRModel", use_amp=True)
    assert isinstance(model, PLKSRModel) and model.use_amp


def test_save_is_atomic_and_rank_zero_only(tmp_path) -> None:
    model = _model(tmp_path)
    model.save(0, 2)
    models, states = Path(model.opt["path"]["models"]), Path(model.opt["path"]["training_states"])
    assert sorted(p.name for p in models.iterdir()) == ["net_g_2.pth"]
    assert sorted(p.name for p in states.iterdir()) == ["2.state"]  # no .partial left behind
    assert torch.load(states / "2.state", weights_only=True)["iter"] == 2
    model.opt["rank"] = 1
    model.save(0, 4)
    assert not (models / "net_g_4.pth").exists() and not (states / "4.state").exists()


def test_pretrained_network_is_checked_against_what_its_file_stores(tmp_path) -> None:
    """Weights PLKSRModel saved record their network; loaded as another run's `pretrain_network_g` into a network
    built with other arguments, they stop the build with a one-line error naming the argument (EMA weights too)."""
    from plksr_arch.weights.read import CheckpointError

    model = _model(
        tmp_path,
        network_g={
            "type": "RealPLKSR",
            "dim": 16,
            "n_blocks": 1,
            "kernel_size": 5,
            "norm_groups": 8,
            "upscaling_factor": 2,
        },
    )
    model.save(0, 2)
    weights = Path(model.opt["path"]["models"]) / "net_g_2.pth"
    network = {"type": "RealPLKSR", "dim": 16, "n_blocks": 1, "kernel_size": 5, "upscaling_factor": 2}
    path = {"pretrain_network_g": str(weights), "strict_load_g": True, "resume_state": None}
    with pytest.raises(CheckpointError, match=r"net_g_2\.pth: was saved from a RealPLKSR with norm_groups=8, but the"):
        _model(tmp_path / "b", name="b", network_g=network, path=path)
    loaded = _model(tmp_path / "c", name="c", network_g={**network, "norm_groups": 8}, path=path)
    for key, value in loaded.net_g.state_dict().items():
        assert torch.equal(value, model.net_g.state_dict()[key]), key
