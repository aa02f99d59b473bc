"""PLKSRModel: AMP, channels_last, EMA, optimizers and fp32 testing on the CPU, through BasicSR's build_model."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
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


def _steps(tmp_path: Path, model_type: str, steps: int = 3, **top) -> tuple[dict, object]:
    """State dict of a `model_type` model after `steps` steps on fixed batches, built from the same seed."""
    from basicsr.models import build_model

    opt = train_options(make_pairs(tmp_path / "data", 2, 2), **top)
    opt = load_options(str(write_yaml(tmp_path / f"{model_type}.yml", opt)), is_train=True, root=str(tmp_path))
    opt["model_type"] = model_type
    torch.manual_seed(0)
    model = build_model(opt)
    gen = torch.Generator().manual_seed(1)
    for i in range(steps):
        model.feed_data({"lq": torch.rand(2, 3, 12, 12, generator=gen), "gt": torch.rand(2, 3, 24, 24, generator=gen)})
        model.optimize_parameters(i + 1)
    return {k: v.clone() for k, v in model.net_g.state_dict().items()}, model


def test_exact_steps_bit_for_bit_like_basicsr_srmodel(tmp_path) -> None:
    """`exact: true` (plksr train --exact) with the official files' `use_amp: true`: BasicSR's SRModel arithmetic,
    which is the official ESRModel's on a CPU (its CUDA-only autocast is off there)."""
    ours, model = _steps(tmp_path, "PLKSRModel", use_amp=True, exact=True)
    basicsr, _ = _steps(tmp_path, "SRModel")
    assert model.routes is None and not model.use_amp
    assert all(type(m) is torch.nn.Conv2d for m in model.net_g.modules() if isinstance(m, torch.nn.Conv2d))
    assert all(torch.equal(ours[k], basicsr[k]) for k in basicsr)


def test_default_routes_train_like_srmodel_to_rounding(tmp_path) -> None:
    """The measured routes and the fused optimizer change rounding only: weights after 3 steps agree with SRModel's
    to 1e-5 relative, and every parameter moved."""
    ours, model = _steps(tmp_path, "PLKSRModel")
    basicsr, _ = _steps(tmp_path, "SRModel")
    assert model.routes is not None and model.optimizer_g.defaults["fused"]
    for key, want in basicsr.items():
        assert ((ours[key] - want).norm() / want.norm()).item() < 1e-5, key


def test_fused_optimizer_unless_exact_or_named(tmp_path) -> None:
    assert not _model(tmp_path, exact=True).optimizer_g.defaults["fused"]
    opt = train_options(make_pairs(tmp_path / "data", 2, 2))
    opt["train"]["optim_g"]["foreach"] = False
    from basicsr.models import build_model

    model = build_model(load_options(str(write_yaml(tmp_path / "f.yml", opt)), is_train=True, root=str(tmp_path)))
    assert not model.optimizer_g.defaults["fused"] and model.optimizer_g.defaults["foreach"] is False


def test_routes_are_kept_in_the_training_state(tmp_path, caplog) -> None:
    model = _model(tmp_path, channels_last=None, large_kernel="spectral")
    model.feed_data(_batch())
    model.optimize_parameters(1)
    assert set(model.routes.values()) >= {"spectral"}
    os_path = tmp_path / "states"
    os_path.mkdir()
    model.opt["path"]["training_states"] = str(os_path)
    model.save_training_state(0, 1)
    state = torch.load(os_path / "1.state", weights_only=False)
    assert state["routes"] == {"routes": model.routes, "compiled": False}
    resumed = _model(tmp_path, large_kernel="direct")  # the state's routes win over a changed file
    resumed.resume_training(state)
    resumed.feed_data(_batch())
    with caplog.at_level("INFO"):
        resumed.optimize_parameters(2)
    assert resumed.routes == model.routes
    assert not [r for r in caplog.records if "training routes (" in r.getMessage()]


@contextlib.contextmanager
def basicsr_logs(caplog) -> Iterator[None]:
    """Capture BasicSR's root logger (it does not propagate) at INFO in `caplog`."""
    basicsr_log = logging.getLogger("basicsr")
    basicsr_log.addHandler(caplog.handler)
    try:
        caplog.set_level("INFO")
        yield
    finally:
        basicsr_log.removeHandler(caplog.handler)


def test_deferred_guard_skips_on_the_device_and_stops_a_run(tmp_path, caplog) -> None:
    """The CUDA guard (`deferred_guard`), run on the CPU: a non-finite loss leaves weights, EMA and the optimizer's
    step count as they were without the host reading a flag in that step; the flags are counted when read."""
    from plksr_arch.training.models.plksr_model import NonFiniteLoss

    opt = train_options(make_pairs(tmp_path / "data", 2, 2))
    opt["train"].update(ema_decay=0.9, nonfinite_limit=2)
    from basicsr.models import build_model

    model = build_model(load_options(str(write_yaml(tmp_path / "d.yml", opt)), is_train=True, root=str(tmp_path)))
    model.deferred_guard = True
    model.feed_data(_batch())
    model.optimize_parameters(1)
    assert isinstance(model.log_dict["l_pix"], torch.Tensor) and isinstance(model.get_current_log()["l_pix"], float)
    weights = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    ema = {k: v.clone() for k, v in model.net_g_ema.state_dict().items()}
    steps = [s["step"].clone() for s in model.optimizer_g.state.values()]
    bad = _batch()
    bad["gt"][0, 0, 0, 0] = float("nan")
    with basicsr_logs(caplog):
        for i in (2, 3):
            model.feed_data(bad)
            model.optimize_parameters(i)
        assert all(torch.equal(v, weights[k]) for k, v in model.net_g.state_dict().items())
        assert all(torch.equal(v, ema[k]) for k, v in model.net_g_ema.state_dict().items())
        assert all(torch.equal(s["step"], t) for s, t in zip(model.optimizer_g.state.values(), steps, strict=True))
        with pytest.raises(NonFiniteLoss, match="2 steps in a row"):
            model.feed_data(_batch())
            model.optimize_parameters(4)  # reads the flags of steps 2 and 3 first
    assert "iter 2: non-finite l_pix=nan (on some rank): net_g step skipped" in caplog.text


@pytest.mark.slow
def test_compile_true_trains_the_compiled_pass_and_keeps_the_keys(tmp_path, caplog) -> None:
    """`compile: true`: net_g's training pass runs through torch.compile (logged with both timings), the weights
    keep their keys and move like the eager run's to rounding, and the choice is kept in the training state."""
    with basicsr_logs(caplog):
        compiled, model = _steps(tmp_path, "PLKSRModel", steps=2, compile=True, channels_last=False)
    eager, _ = _steps(tmp_path, "PLKSRModel", steps=2, compile=False, channels_last=False)
    assert model.compiled and model.forward_g is not model.net_g
    assert "torch.compile of the training pass: kept (compiled" in caplog.text
    assert list(compiled) == list(eager) == list(model.net_g.state_dict())
    for key, want in eager.items():
        assert ((compiled[key] - want).norm() / want.norm()).item() < 1e-5, key
    model.opt["path"]["training_states"] = str(tmp_path)
    model.save_training_state(0, 2)
    assert torch.load(tmp_path / "2.state", weights_only=False)["routes"]["compiled"] is True


def test_compile_auto_is_not_tried_on_short_runs(tmp_path) -> None:
    _, model = _steps(tmp_path, "PLKSRModel", steps=1)  # total_iter 4 < COMPILE_MIN_ITERS
    assert model.compiled is False and model.forward_g is model.net_g
