"""Real-world training: per-model option validation, BasicSR's degradation on the CPU, RealESRNet/RealESRGAN steps,
skipped non-finite steps, grad scalers and best metrics in training states."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from plksr_arch.training.models.plksr_model import NonFiniteLoss
from plksr_arch.training.models.realesr_model import Degradation, degradation_options
from plksr_arch.training.options import OptionsError, load_options

from ..conftest import make_pairs, paired_dataset, real_options, train_options, write_yaml


def _load(tmp_path: Path, opt: dict, check_paths: bool = False) -> dict:
    path = write_yaml(tmp_path / "opt.yml", opt)
    return load_options(str(path), is_train=True, root=str(tmp_path), check_paths=check_paths)


def _error(tmp_path: Path, opt: dict, check_paths: bool = False) -> str:
    with pytest.raises(OptionsError) as err:
        _load(tmp_path, opt, check_paths)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "opt.yml"))
    return message


def _build(tmp_path: Path, stage: str, **top):
    from basicsr.models import build_model

    return build_model(_load(tmp_path, real_options(tmp_path, stage, **top)))


def _batch(opt: dict, n: int = 2) -> dict:
    """A RealESRGANDataset batch (GT patches + kernels) of the options' training set."""
    from basicsr.data import build_dataset

    dataset = build_dataset(opt["datasets"]["train"])
    return default_collate([dataset[i] for i in range(n)])


def test_real_esrgan_x4plus_layout_validates_for_ours_and_basicsrs_classes(tmp_path) -> None:
    """Real-ESRGAN's published layout (RRDBNet, top-level degradation keys) is accepted, as the issue asks."""
    opt = real_options(tmp_path, "GAN")
    opt["network_g"] = {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1}
    assert _load(tmp_path, opt)["model_type"] == "PLKSRRealESRGANModel"  # Real-ESRGAN's name, read as ours
    del opt["datasets"]["train"]["crop_pad_size"]  # BasicSR's dataset does not know our key
    opt["model_type"], opt["datasets"]["train"]["type"] = "RealESRGANModel_basicsr", "RealESRGANDataset_basicsr"
    assert "opt.yml: use_amp: unknown key" in _error(tmp_path, opt)  # PLKSRModel's key: BasicSR's class has no AMP
    for key in ("use_amp", "amp_dtype", "channels_last"):
        del opt[key]
    _load(tmp_path, opt)
    opt["datasets"]["train"]["crop_pad_size"] = 48
    assert "datasets.train.crop_pad_size: unknown key" in _error(tmp_path, opt)


def test_plksr_model_does_not_know_degradation_keys(tmp_path) -> None:
    opt = train_options(make_pairs(tmp_path / "data", 2, 2), resize_prob=[0.2, 0.7, 0.1])
    assert "opt.yml: resize_prob: unknown key" in _error(tmp_path, opt)


def _set(path: str, value) -> Callable[[dict], None]:
    def change(opt: dict) -> None:
        *parents, leaf = path.split(".")
        node = opt
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[leaf]
        else:
            node[leaf] = value

    return change


def _paired_train(opt: dict) -> None:
    opt["datasets"]["train"] = {**paired_dataset("pairs", ("gt", "lq")), "batch_size_per_gpu": 2}


@pytest.mark.parametrize(
    ("stage", "change", "expected"),
    [
        ("Net", _set("resize_prob", KeyError), "resize_prob: missing: the on-the-fly degradation needs it"),
        ("Net", _set("resize_prob", [0.5, 0.5, 0.5]), "resize_prob: [0.5, 0.5, 0.5]: expected 3 probabilities"),
        ("Net", _set("gray_noise_prob2", 1.5), "gray_noise_prob2: 1.5: probabilities must be numbers in [0, 1]"),
        ("Net", _set("noise_range", [30, 1]), "noise_range: [30, 1]: expected [min, max]"),
        ("Net", _set("queue_size", 5), "queue_size: 5: must be 0 or a multiple of datasets.train.batch_size_per_gpu"),
        ("Net", _set("gt_size", 64), "gt_size: 64: must be a multiple of scale 4 and at most the GT patch size 48"),
        ("Net", _set("datasets.train.crop_pad_size", 50), "scale: 4: does not divide the GT patch size 50"),
        ("Net", _set("resize_prb", [0.2, 0.7, 0.1]), "resize_prb: unknown key (did you mean 'resize_prob'?)"),
        ("Net", _set("datasets.train.kernel_list", KeyError), "datasets.train.kernel_list: missing"),
        ("Net", _paired_train, "'PLKSRPairedImageDataset' gives no degradation"),
        ("Net", _set("high_order_degradation", False), "RealESRGANDataset gives GT only"),
        ("Net", _set("l1_gt_usm", True), "l1_gt_usm: unknown key (did you mean 'gt_usm'?)"),
        ("GAN", _set("train.optim_d", KeyError), "train.optim_d: missing: a GAN model needs it"),
        ("GAN", _set("network_d.num_feats", 8), "network_d.num_feats: unknown key (did you mean 'num_feat'?)"),
        ("GAN", _set("train.gan_opt.gan_type", ["x"]), None),
        ("GAN", _set("train.ldl_opt", {"type": "L1Loss"}), "train.ldl_opt: needs train.ema_decay > 0"),
        ("Net", _set("model_type", "EDVRModel"), "model_type: 'EDVRModel' is a BasicSR VideoBaseModel"),
    ],
)
def test_real_world_option_errors_name_the_key(tmp_path, stage: str, change, expected: str | None) -> None:
    opt = real_options(tmp_path, stage)
    change(opt)
    if stage == "GAN" and "ldl_opt" in opt["train"]:
        opt["train"]["ema_decay"] = 0
    if expected is None:  # a value BasicSR checks itself, later: validation leaves it
        _load(tmp_path, opt)
    else:
        assert expected in _error(tmp_path, opt)


def test_missing_vgg_weights_stop_before_training_with_the_download_url(tmp_path) -> None:
    opt = real_options(tmp_path, "GAN")
    opt["train"]["perceptual_opt"]["vgg_weights"] = str(tmp_path / "nope.pth")
    message = _error(tmp_path, opt, check_paths=True)
    assert f"train.perceptual_opt.vgg_weights: '{tmp_path / 'nope.pth'}' does not exist" in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    del opt["train"]["perceptual_opt"]["vgg_weights"]  # BasicSR's default place, relative to the working directory
    assert "'experiments/pretrained_models/vgg19-dcbb9e9d.pth' does not exist" in _error(tmp_path, opt, True)


def test_dataset_crops_gt_to_crop_pad_size(tmp_path) -> None:
    batch = _batch(_load(tmp_path, real_options(tmp_path, "Net")))
    assert batch["gt"].shape == (2, 3, 48, 48)
    assert batch["kernel1"].shape == batch["kernel2"].shape == batch["sinc_kernel"].shape == (2, 21, 21)


@pytest.mark.parametrize("gan", [False, True])
def test_degradation_runs_on_the_cpu_and_is_seeded(tmp_path, gan: bool) -> None:
    opt = _load(tmp_path, real_options(tmp_path, "GAN" if gan else "Net", queue_size=0))
    batch = _batch(opt)

    def degrade() -> tuple:
        torch.manual_seed(1)
        __import__("random").seed(1)
        __import__("numpy").random.seed(1)
        return Degradation(degradation_options(opt, gan), torch.device("cpu"), gan=gan)(batch)

    gt, lq, gt_usm = degrade()
    assert gt.shape == (2, 3, 32, 32) and lq.shape == (2, 3, 8, 8) and lq.is_contiguous()
    assert lq.min() >= 0 and lq.max() <= 1 and torch.equal(lq, (lq * 255).round() / 255)  # 8-bit like a real input
    assert (gt_usm is not None) == gan
    again = degrade()
    assert torch.equal(lq, again[1]) and torch.equal(gt, again[0])


def test_pool_passes_batches_until_full_then_swaps(tmp_path) -> None:
    opt = degradation_options(_load(tmp_path, real_options(tmp_path, "Net")), gan=False)
    pool = Degradation(opt, torch.device("cpu"), gan=False)  # queue_size 4, batches of 2
    batches = [torch.full((2, 3, 2, 2), float(i)) for i in range(3)]
    for i in range(2):
        pool.lq, pool.gt = batches[i], batches[i] * 2
        pool._dequeue_and_enqueue()
        assert torch.equal(pool.lq, batches[i])  # filling: passes through
    pool.lq, pool.gt = batches[2], batches[2] * 2
    pool._dequeue_and_enqueue()
    assert set(pool.lq[:, 0, 0, 0].tolist()) <= {0.0, 1.0} and torch.equal(pool.gt, pool.lq * 2)  # pairs stay paired
    assert sorted(pool.queue_lq[:, 0, 0, 0].tolist()).count(2.0) == 2  # the new batch is stored


def test_realesrnet_step_on_cpu_with_channels_last(tmp_path) -> None:
    model = _build(tmp_path, "Net", channels_last=True)
    assert type(model).__name__ == "PLKSRRealESRNetModel" and model.device.type == "cpu"
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.feed_data(_batch(model.opt))
    assert model.lq.shape == (2, 3, 8, 8) and model.lq.is_contiguous(memory_format=torch.channels_last)
    model.optimize_parameters(1)
    assert set(model.log_dict) == {"l_pix"}
    assert all(not torch.equal(v, before[k]) for k, v in model.net_g.state_dict().items() if v.is_floating_point())


def test_realesrgan_step_updates_generator_discriminator_and_ema(tmp_path) -> None:
    model = _build(tmp_path, "GAN")
    g, d = model.net_g.state_dict(), model.net_d.state_dict()
    g, d, ema = ({k: v.clone() for k, v in s.items()} for s in (g, d, model.net_g_ema.state_dict()))
    model.feed_data(_batch(model.opt))
    model.optimize_parameters(1)
    logged = {"l_g_pix", "l_g_percep", "l_g_gan", "l_d_real", "out_d_real", "l_d_fake", "out_d_fake"}
    assert set(model.log_dict) == logged
    for before, net in ((g, model.net_g), (d, model.net_d), (ema, model.net_g_ema)):
        assert any(not torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert all(p.requires_grad for p in model.net_d.parameters())  # frozen only for the generator's term


def test_paired_batches_are_not_degraded(tmp_path) -> None:
    model = _build(tmp_path, "GAN")
    lq, gt = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 32, 32)
    model.feed_data({"lq": lq, "gt": gt})
    assert torch.equal(model.lq, lq) and torch.equal(model.gt, gt)
    assert torch.equal(model.gt_usm, model.usm_sharpener(gt))


def _plksr_model(tmp_path: Path, **train):
    from basicsr.models import build_model

    opt = train_options(make_pairs(tmp_path / "data", 2, 2))
    opt["train"].update(train)
    return build_model(_load(tmp_path, opt))


def _weights(model) -> dict:
    return {k: v.clone() for k, v in model.net_g.state_dict().items()}


def _same(model, weights: dict) -> bool:
    return all(torch.equal(v, weights[k]) for k, v in model.net_g.state_dict().items())


def test_nonfinite_loss_skips_the_step_and_stops_after_the_limit(tmp_path, caplog) -> None:
    model = _plksr_model(tmp_path, nonfinite_limit=2)
    good = {"lq": torch.rand(2, 3, 8, 8), "gt": torch.rand(2, 3, 16, 16)}
    bad = {"lq": torch.full((2, 3, 8, 8), float("nan")), "gt": good["gt"]}
    weights = _weights(model)
    with caplog.at_level(logging.WARNING, logger="basicsr"):
        model.feed_data(bad)
        model.optimize_parameters(1)
    assert _same(model, weights) and model.nonfinite_streak == 1
    assert "iter 1: non-finite l_pix=nan (on some rank): net_g step skipped" in caplog.text
    model.feed_data(good)
    model.optimize_parameters(2)  # a finite step resets the count
    assert not _same(model, weights) and model.nonfinite_streak == 0
    weights = _weights(model)
    model.feed_data(bad)
    model.optimize_parameters(3)
    with pytest.raises(NonFiniteLoss, match=r"stopped at iter 4: 2 steps in a row .* \(last: l_pix=nan\)"):
        model.optimize_parameters(4)
    assert _same(model, weights)  # the last good weights, which the training loop saves


def test_nonfinite_gradient_without_grad_scaler_is_skipped(tmp_path, caplog) -> None:
    model = _plksr_model(tmp_path)
    assert not model.scalers[0].is_enabled()
    model.net_g.feats[0].weight.register_hook(lambda grad: grad * float("inf"))
    weights = _weights(model)
    with caplog.at_level(logging.WARNING, logger="basicsr"):
        model.feed_data({"lq": torch.rand(2, 3, 8, 8), "gt": torch.rand(2, 3, 16, 16)})
        model.optimize_parameters(1)
    assert _same(model, weights) and "non-finite gradient norm=inf" in caplog.text


def test_training_state_holds_grad_scalers_and_best_metrics(tmp_path) -> None:
    model = _plksr_model(tmp_path)
    model.scalers = [torch.amp.GradScaler("cpu", init_scale=2.0**10)]
    model.best_metric_results = {"Set5": {"psnr": {"better": "higher", "val": 30.5, "iter": 4}}}
    (tmp_path / "experiments" / "tiny" / "training_states").mkdir(parents=True)
    model.save_training_state(0, 4)
    state = torch.load(tmp_path / "experiments" / "tiny" / "training_states" / "4.state", weights_only=True)
    assert state["scalers"][0]["scale"] == 2.0**10 and state["best_metric_results"]["Set5"]["psnr"]["val"] == 30.5
    resumed = _plksr_model(tmp_path / "again")
    resumed.scalers = [torch.amp.GradScaler("cpu")]
    resumed.resume_training(state)
    assert resumed.scalers[0].get_scale() == 2.0**10 and resumed.best_metric_results == model.best_metric_results


def test_model_refuses_missing_vgg_weights_instead_of_downloading(tmp_path) -> None:
    from basicsr.models import build_model

    from plksr_arch.errors import UserError

    opt = real_options(tmp_path, "GAN")
    opt["train"]["perceptual_opt"]["vgg_weights"] = str(tmp_path / "none.pth")
    with pytest.raises(UserError, match=r"train\.perceptual_opt\.vgg_weights: '.*none\.pth' does not exist"):
        build_model(_load(tmp_path, opt))  # options loaded without path checks, as a library user might
