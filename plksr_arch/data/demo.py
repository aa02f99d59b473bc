"""The embedded demo: a paired SR dataset from the photos scikit-image ships offline, and its training recipe.

Train photos and held-out test photos never overlap. HR images are cropped to a multiple of the scale, LR images are
made with BasicSR's MATLAB-compatible bicubic `imresize` (as the benchmark sets are), and training pairs are cut into
aligned sub-images so the data loader decodes small PNGs instead of whole photos.
"""

from __future__ import annotations

import logging
import os
import os.path as osp
import statistics
import time
from importlib import resources

import numpy as np
import torch
import yaml

from .prepare import bicubic_lr, modcrop, subimage_boxes, write_png

# CC0 / public-domain photos in scikit-image's package data (no download); greyscale ones add texture variety.
TRAIN_PHOTOS = (
    "astronaut",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "stereo_motorcycle",
    "camera",
    "brick",
    "gravel",
    "grass",
    "coins",
    "moon",
)
TEST_PHOTOS = ("chelsea", "coffee")
SUB_SIZE, SUB_STEP = 240, 120  # HR sub-image size and stride (multiples of 2, 3 and 4)

logger = logging.getLogger("plksr")


def load_photo(name: str) -> np.ndarray:
    """One scikit-image photo as an HxWx3 uint8 BGR array (greyscale replicated), as cv2 would read it."""
    from skimage import data

    img = getattr(data, name)()
    img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle: (left, right, disparity)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., 2::-1])


def build_dataset(root: str, scale: int) -> dict[str, str]:
    """Write `root/{train,test}/{GT,LRx<scale>}` (train as aligned sub-images) and return the four folders."""
    folders = {
        f"{split}_{kind}": osp.join(root, split, "GT" if kind == "gt" else f"LRx{scale}")
        for split in ("train", "test")
        for kind in ("gt", "lq")
    }
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    for name in TEST_PHOTOS:
        hr = modcrop(load_photo(name), scale)
        write_png(osp.join(folders["test_gt"], f"{name}.png"), hr, compression=1)
        write_png(osp.join(folders["test_lq"], f"{name}.png"), bicubic_lr(hr, scale), compression=1)
    for name in TRAIN_PHOTOS:
        hr = modcrop(load_photo(name), scale)
        lr = bicubic_lr(hr, scale)
        for y, x in subimage_boxes(hr.shape[0], hr.shape[1], SUB_SIZE, SUB_STEP, scale):
            stem = f"{name}_s{y:04d}_{x:04d}.png"
            write_png(osp.join(folders["train_gt"], stem), hr[y : y + SUB_SIZE, x : x + SUB_SIZE], compression=1)
            ly, lx, ls = y // scale, x // scale, SUB_SIZE // scale
            write_png(osp.join(folders["train_lq"], stem), lr[ly : ly + ls, lx : lx + ls], compression=1)
    return folders


def measure_iters_per_second(opt: dict, device: torch.device, n_warmup: int = 3, n_timed: int = 9) -> float:
    """Training iterations per second of `opt`'s network, batch and precision on `device` (random data).

    The median step time is used, so a short burst of other work on the machine does not shrink the demo's
    iteration budget (with the mean, a few seconds of `pytest` beside it once cut the budget by 3.5x).
    """
    from basicsr.archs import build_network

    from ..models.plksr_model import autocast_dtype

    ds = opt["datasets"]["train"]
    batch, gt_size = ds["batch_size_per_gpu"], ds["gt_size"]
    fmt = torch.channels_last if opt.get("channels_last") else torch.preserve_format
    net = build_network(dict(opt["network_g"])).to(device, memory_format=fmt)
    lq = torch.rand(batch, 3, gt_size // opt["scale"], gt_size // opt["scale"], device=device).to(memory_format=fmt)
    gt = torch.rand(batch, 3, gt_size, gt_size, device=device)
    optim = torch.optim.Adam(net.parameters(), 1e-4)
    use_amp = bool(opt.get("use_amp"))
    dtype = autocast_dtype(device, opt.get("amp_dtype", "auto"), logger) if use_amp else None

    def step() -> None:
        optim.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
            out = net(lq)
        torch.nn.functional.l1_loss(out.float(), gt).backward()
        optim.step()

    for _ in range(n_warmup):
        step()
    times = []
    for _ in range(n_timed):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1.0 / statistics.median(times)


def _recipe() -> dict:
    return yaml.safe_load(resources.files("plksr_arch.data").joinpath("demo.yml").read_text(encoding="utf-8"))


def train_options(data: dict[str, str], scale: int, total_iter: int, fast: bool) -> dict:
    """The shipped demo recipe for training: data paths, scale, iteration count and precision filled in."""
    opt = _recipe()
    opt["name"] = f"demo_PLKSR-tiny_x{scale}"
    opt["scale"] = opt["network_g"]["upscaling_factor"] = scale
    opt["use_amp"] = opt["channels_last"] = fast
    train = opt["datasets"]["train"]
    train["dataroot_gt"], train["dataroot_lq"] = data["train_gt"], data["train_lq"]
    train["gt_size"] = 48 * scale
    del opt["datasets"]["val_1"], opt["val"]  # `plksr demo` tests once, after training
    opt["train"]["total_iter"] = total_iter
    opt["train"]["scheduler"]["periods"] = [total_iter]
    opt["train"]["warmup_iter"] = min(opt["train"]["warmup_iter"], total_iter // 5)
    opt["logger"]["print_freq"] = max(1, total_iter // 25)
    return opt


def test_options(data: dict[str, str], scale: int, weights: str) -> dict:
    """Test options for the held-out photos: fp32 metrics (Y channel, crop_border = scale) of `weights`."""
    opt = _recipe()
    test = opt["datasets"].pop("val_1")
    test["dataroot_gt"], test["dataroot_lq"] = data["test_gt"], data["test_lq"]
    for key in ("train", "logger", "use_amp", "amp_dtype"):
        del opt[key]
    opt["name"] = f"demo_PLKSR-tiny_x{scale}"
    opt["scale"] = opt["network_g"]["upscaling_factor"] = scale
    opt["datasets"] = {"test_1": test}
    opt["path"] = {"pretrain_network_g": weights, "strict_load_g": True, "param_key_g": "params"}
    opt["val"] = {"save_img": True, "suffix": None, "metrics": opt["val"]["metrics"]}
    for metric in opt["val"]["metrics"].values():
        metric["crop_border"] = scale
    return opt


def _dump(opt: dict, path: str) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def run_demo(workdir: str, scale: int = 4, minutes: float = 7.0) -> dict:
    """Build the data, calibrate speed, train PLKSR-tiny for about `minutes`, test it; return metrics.json's dict.

    Runs on CUDA when available, else on the CPU with bf16 autocast + channels_last where the CPU has native bf16
    (training 2.1x faster than fp32 on a 2-core CPU with native bf16), plain fp32 otherwise. Everything is written under
    `workdir`.
    """
    from .. import test as test_mod
    from .. import train as train_mod
    from ..models.plksr_model import cpu_supports_bf16

    workdir = osp.abspath(workdir)
    logger.info(f"Building the demo dataset (x{scale}) from scikit-image's photos in {workdir}/data ...")
    data = build_dataset(osp.join(workdir, "data"), scale)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fast = device.type == "cuda" or cpu_supports_bf16()
    rate = measure_iters_per_second(train_options(data, scale, 1, fast), device)
    total_iter = max(20, int(minutes * 60 * rate))
    precision = "bf16 autocast + channels_last" if fast else "fp32"
    logger.info(f"{device.type}, {precision}: {rate:.2f} it/s measured -> {total_iter} iterations (~{minutes} min)")
    train_path = _dump(train_options(data, scale, total_iter, fast), osp.join(workdir, "options", "train_demo.yml"))
    weights = train_mod.run(train_path, root=workdir)
    test_path = _dump(test_options(data, scale, weights), osp.join(workdir, "options", "test_demo.yml"))
    return test_mod.run(test_path, root=workdir)
