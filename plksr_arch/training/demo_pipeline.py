"""`plksr demo`: pick a PLKSR this machine can train well in the time budget, train it on the embedded photos with
BasicSR's pipeline, test it against bicubic. `plksr demo --real`: the same for RealPLKSR trained on inputs degraded on
the fly (stage 1 of Real-ESRGAN's recipe), tested on held-out photos degraded the same way with a fixed seed.

The networks (`tiers`) and their recipes are data: `plksr_arch/resources/demo.yml` and `demo_real.yml` (its degradation
settings from `realesrgan_x4plus.yml`). Device and precision follow `runtime`'s auto rule; the data comes from
`plksr_arch.data.photos`.
"""

from __future__ import annotations

import logging
import os
import os.path as osp
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import torch
import yaml

from plksr_arch.data.photos import REAL_HELDOUT_SIZE, TEST_PHOTOS, TRAIN_PHOTOS, build_dataset, load_photo
from plksr_arch.data.preparation import prepare_real, write_png
from plksr_arch.runtime.device import autocast_dtype, describe, memory_format, resolve_device, resolve_precision
from plksr_arch.runtime.measure import time_runs
from plksr_arch.training.degrade import degraded_pairs

logger = logging.getLogger("plksr")


@dataclass(frozen=True)
class Tier:
    """A network the demo can train (PLKSR keywords), its recipe, and its floor: the iterations it needs to beat
    bicubic clearly on the held-out photos (measured)."""

    label: str
    network: dict[str, Any]
    batch: int
    lr_patch: int
    lr: float
    floor: int


@dataclass(frozen=True)
class Plan:
    """What the demo trains: a tier, the speed measured for it here (iterations/s) and the iteration count."""

    tier: Tier
    rate: float
    total_iter: int

    @property
    def minutes(self) -> float:
        return self.total_iter / self.rate / 60


def measure_iters_per_second(
    opt: dict, device: torch.device, precision: str, n_warmup: int = 2, n_timed: int = 5
) -> float:
    """Training iterations per second of `opt`'s network, batch and patch size in `precision` on `device`
    (random data, Adam, L1: the demo's step without data loading).

    The median step time is used, so a short burst of other work on the machine does not shrink the demo's
    iteration budget (with the mean, a few seconds of `pytest` beside it once cut the budget by 3.5x).
    """
    from basicsr.archs import build_network

    ds = opt["datasets"]["train"]
    batch, gt_size = ds["batch_size_per_gpu"], ds["gt_size"]
    fmt = memory_format(precision)
    net = build_network(dict(opt["network_g"])).to(device, memory_format=fmt)
    lq = torch.rand(batch, 3, gt_size // opt["scale"], gt_size // opt["scale"], device=device).to(memory_format=fmt)
    gt = torch.rand(batch, 3, gt_size, gt_size, device=device)
    optim = torch.optim.Adam(net.parameters(), 1e-4)
    dtype = autocast_dtype(precision)

    def step() -> None:
        optim.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = net(lq)
        torch.nn.functional.l1_loss(out.float(), gt).backward()
        optim.step()

    return 1000.0 / time_runs(step, device, n_warmup, n_timed)


def build_real_dataset(root: str, scale: int) -> dict[str, str]:
    """For `plksr demo --real`: the training photos as 400 px GT sub-images with a RealESRGANDataset meta_info
    (`prepare_real` into `root/train`; equal-sized files keep the loading time per batch steady, so the speed
    calibration holds), and the held-out photos as degraded pairs (`degrade.degraded_pairs`, 256 px centre crops,
    seed 0) in `root/test/{GT,LQ}`. Returns the paths."""
    folders = {kind: osp.join(root, f"{kind}_photos") for kind in ("train", "heldout")}
    paths: dict[str, list[str]] = {}
    for kind, names in (("train", TRAIN_PHOTOS), ("heldout", TEST_PHOTOS)):
        os.makedirs(folders[kind], exist_ok=True)
        paths[kind] = [osp.join(folders[kind], f"{name}.png") for name in names]
        for name, path in zip(names, paths[kind], strict=True):
            write_png(path, load_photo(name), compression=1)
    train = prepare_real(folders["train"], osp.join(root, "train"), "skimage", size=400, step=400)
    pairs = degraded_pairs(paths["heldout"], osp.join(root, "test"), scale, size=REAL_HELDOUT_SIZE, seed=0)
    return {
        "train_gt": osp.join(root, "train"),
        "meta_info": train["meta_info"],
        **{f"test_{k}": v for k, v in pairs.items()},
    }


def _recipe(real: bool = False) -> dict:
    name = "demo_real.yml" if real else "demo.yml"
    return yaml.safe_load(resources.files("plksr_arch.resources").joinpath(name).read_text(encoding="utf-8"))


def tiers(real: bool = False) -> list[Tier]:
    """The demo's networks, largest first (`tiers` in demo.yml, or demo_real.yml for `real`)."""
    return [Tier(**tier) for tier in _recipe(real)["tiers"]]


def _base_options(tier: Tier, scale: int, real: bool = False) -> dict:
    opt = _recipe(real)
    del opt["tiers"]
    opt["name"] = f"demo_{'real_' if real else ''}{tier.label}_x{scale}"
    opt["scale"] = scale
    opt["network_g"].update(tier.network, upscaling_factor=scale)
    if real:
        from plksr_arch.training.degrade import recipe

        degradation = recipe()
        opt.update({k: v for k, v in degradation["model"].items() if k not in opt})
        opt["datasets"]["train"].update(degradation["dataset"])
    return opt


def train_options(
    data: dict[str, str], scale: int, total_iter: int, tier: Tier, precision: str, real: bool = False
) -> dict:
    """The demo recipe for training `tier`: data paths, scale, iteration count and precision filled in."""
    opt = _base_options(tier, scale, real)
    opt["use_amp"] = opt["channels_last"] = precision != "fp32"
    if precision != "fp32":
        opt["amp_dtype"] = precision
    train = opt["datasets"]["train"]
    if real:
        train["dataroot_gt"], train["meta_info"] = data["train_gt"], data["meta_info"]
        opt["gt_size"] = tier.lr_patch * scale
    else:
        train["dataroot_gt"], train["dataroot_lq"] = data["train_gt"], data["train_lq"]
    train["gt_size"] = tier.lr_patch * scale
    train["batch_size_per_gpu"] = tier.batch
    del opt["datasets"]["val_1"], opt["val"]  # `plksr demo` tests once, after training
    opt["train"]["optim_g"]["lr"] = tier.lr
    opt["train"]["total_iter"] = total_iter
    opt["train"]["scheduler"]["periods"] = [total_iter]
    opt["train"]["warmup_iter"] = min(opt["train"]["warmup_iter"], total_iter // 5)
    opt["logger"]["print_freq"] = max(1, total_iter // 25)
    return opt


def test_options(data: dict[str, str], scale: int, weights: str, tier: Tier, real: bool = False) -> dict:
    """Test options for the held-out photos: fp32 metrics (crop_border = scale; Y channel, or RGB for `real`) of
    `weights`, with comparison strips."""
    opt = _base_options(tier, scale, real)
    kept = ("name", "scale", "num_gpu", "manual_seed", "datasets", "network_g", "val")
    opt = {"model_type": "PLKSRModel", **{k: v for k, v in opt.items() if k in kept}}  # testing: no training keys
    test = opt["datasets"].pop("val_1")
    test["dataroot_gt"], test["dataroot_lq"] = data["test_gt"], data["test_lq"]
    opt["datasets"] = {"test_1": test}
    opt["path"] = {"pretrain_network_g": weights, "strict_load_g": True, "param_key_g": "params"}
    opt["val"] = {"save_img": True, "suffix": None, "metrics": opt["val"]["metrics"]}
    for metric in opt["val"]["metrics"].values():
        metric["crop_border"] = scale
    return opt


def plan_training(
    minutes: float,
    options: Callable[[Tier, int], dict],
    measure: Callable[[dict], float],
    real: bool = False,
) -> Plan:
    """The first tier whose floor fits in `minutes` at the measured speed, trained for the whole budget; when none
    fits, the last tier for its floor, with a warning that says how long that takes.

    `options(tier, total_iter)` gives a tier's training options, `measure(opt)` its iterations per second; `real`
    picks demo_real.yml's tiers."""
    budget = minutes * 60
    for tier in tiers(real):
        rate = measure(options(tier, 1))
        fits = int(budget * rate)
        logger.info(f"{tier.label}: {rate:.2f} it/s -> {fits} iterations in {minutes:g} min (needs {tier.floor})")
        if fits >= tier.floor:
            return Plan(tier, rate, fits)
    plan = Plan(tier, rate, tier.floor)
    logger.warning(
        f"This machine is too slow to train a demo network well in {minutes:g} min: {tier.label} needs "
        f"{tier.floor} iterations, about {plan.minutes:.1f} min here. Training that long."
    )
    return plan


def _dump(opt: dict, path: str) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def psnr_gain(report: dict) -> float:
    """PSNR over MATLAB bicubic (dB) on the held-out photos of a demo report."""
    heldout = next(iter(report["datasets"].values()))
    return heldout["psnr"] - heldout["bicubic"]["psnr"]


def real_step_seconds(opt: dict, n_timed: int = 3) -> float:
    """Median seconds of one real-world training step of `opt` (completed by `load_options`), as the training loop
    runs it: load a batch (no loader process), degrade it on the model's device, train."""
    from basicsr.data import build_dataset
    from basicsr.models import build_model
    from torch.utils.data import default_collate

    ds = build_dataset(dict(opt["datasets"]["train"]))
    model = build_model(opt)
    batch_size = opt["datasets"]["train"]["batch_size_per_gpu"]
    steps = iter(range(1, 10**9))

    def step() -> None:
        i = next(steps)
        model.feed_data(default_collate([ds[(i * batch_size + k) % len(ds)] for k in range(batch_size)]))
        model.optimize_parameters(i)

    return time_runs(step, model.device, 1, n_timed) / 1000.0


def run_demo(workdir: str, scale: int = 4, minutes: float = 7.0, real: bool = False) -> tuple[dict, Plan]:
    """Build the data, pick and calibrate a network, train it for about `minutes`, test it; return (metrics.json's
    dict, the plan). Device and precision follow the runtime's auto rule (CUDA fp16; bf16 + channels_last on a
    CPU with native bf16; fp32 otherwise). `real`: RealPLKSR on degraded inputs (demo_real.yml), tested on degraded
    held-out photos. Everything is written under `workdir`."""
    from plksr_arch.training import test_pipeline as test_mod
    from plksr_arch.training import train_pipeline as train_mod
    from plksr_arch.training.options import load_options

    workdir = osp.abspath(workdir)
    kind = "real-world " if real else ""
    logger.info(f"Building the {kind}demo dataset (x{scale}) from scikit-image's photos in {workdir}/data ...")
    data = (build_real_dataset if real else build_dataset)(osp.join(workdir, "data"), scale)
    device = resolve_device("auto")
    precision = resolve_precision("auto", device)
    logger.info(f"Calibrating on {describe(device)} in {precision} ...")

    def rate(opt: dict) -> float:
        if not real:
            return measure_iters_per_second(opt, device, precision)
        calibration = _dump({**opt, "name": "calibration"}, osp.join(workdir, "options", "calibration.yml"))
        return 1 / real_step_seconds(load_options(calibration, is_train=True, root=workdir))

    plan = plan_training(
        minutes, lambda tier, total_iter: train_options(data, scale, total_iter, tier, precision, real), rate, real
    )
    logger.info(
        f"Training {plan.tier.label} x{scale} for {plan.total_iter} iterations at {plan.rate:.2f} it/s "
        f"(~{plan.minutes:.1f} min, {precision})"
    )
    train_opt = train_options(data, scale, plan.total_iter, plan.tier, precision, real)
    weights = train_mod.run(_dump(train_opt, osp.join(workdir, "options", "train_demo.yml")), root=workdir)
    test_opt = test_options(data, scale, weights, plan.tier, real)
    return test_mod.run(_dump(test_opt, osp.join(workdir, "options", "test_demo.yml")), root=workdir), plan
