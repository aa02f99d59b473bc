"""Shared fixtures: seeding, tiny networks, tiny paired datasets and option files in tmp_path, the `plksr` command."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

# pytest runs two xdist workers on two cores: each test process, and every `plksr` it starts, computes on one thread,
# so the workers never oversubscribe the cores (busy OpenMP threads spin while they wait for one). Set before torch
# is imported; a test that needs more threads says so (`--threads`, `torch.set_num_threads`).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

import plksr_arch  # noqa: E402, F401  (applies the compat fixes and registers before basicsr is used)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PLKSR = Path(sys.executable).with_name("plksr")
TINY_NET = {"type": "PLKSR", "dim": 16, "n_blocks": 2, "kernel_size": 7, "split_ratio": 0.25, "use_ea": True}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


def shared(relative: str) -> Path:
    """`../shared/<relative>`, or skip the test when it is absent; in CI (`.ci/run` runs beside ../shared) an absent
    file is a broken setup and fails the test."""
    path = SHARED / relative
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"../shared/{relative} is absent in CI")
        pytest.skip(f"../shared/{relative} is absent")
    return path


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, peak: float = 1.0) -> float:
    """PSNR (dB) between two images or tensors of the same shape; inf when identical."""
    mse = float(((torch.as_tensor(a, dtype=torch.float64) - torch.as_tensor(b, dtype=torch.float64)) ** 2).mean())
    return 10 * math.log10(peak**2 / mse) if mse else float("inf")


def bicubic_means(dataset, metrics_opt: dict, scale: int) -> dict[str, float]:
    """Mean metrics of MATLAB-bicubic upsampling over a paired dataset, from the functions `plksr test` uses."""
    from basicsr.utils import tensor2img

    from plksr_arch.evaluation.metrics import bicubic_image, image_metrics

    per_image = [
        image_metrics(bicubic_image(item["lq"], scale), tensor2img(item["gt"]), metrics_opt)
        for item in (dataset[i] for i in range(len(dataset)))
    ]
    return {name: float(np.mean([m[name] for m in per_image])) for name in metrics_opt}


def make_pairs(root: Path, n: int, scale: int, size: int = 48, seed: int = 0) -> tuple[Path, Path]:
    """`n` smooth random RGB HR images (size x size) with nearest-downsampled LR twins, BasicSR folder layout."""
    rng = np.random.default_rng(seed)
    gt, lq = root / "GT", root / f"LRx{scale}"
    gt.mkdir(parents=True, exist_ok=True)
    lq.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        coarse = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        hr = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(gt / f"img{i:03d}.png"), hr)
        cv2.imwrite(str(lq / f"img{i:03d}.png"), hr[::scale, ::scale])
    return gt, lq


def paired_dataset(name: str, data: tuple[Path, Path]) -> dict:
    """A PairedImageDataset entry (disk backend) for GT/LQ folders with the same file names."""
    return {
        "name": name,
        "type": "PairedImageDataset",
        "dataroot_gt": str(data[0]),
        "dataroot_lq": str(data[1]),
        "filename_tmpl": "{}",
        "io_backend": {"type": "disk"},
    }


def train_options(data: tuple[Path, Path], val: tuple[Path, Path] | None = None, scale: int = 2, **top) -> dict:
    """A complete, tiny training option dict (disk backend); keyword arguments replace top-level keys."""
    opt = {
        "name": "tiny",
        "model_type": "PLKSRModel",
        "scale": scale,
        "num_gpu": 0,
        "manual_seed": 0,
        "datasets": {
            "train": {
                **paired_dataset("tiny_train", data),
                "gt_size": 8 * scale,
                "use_hflip": True,
                "use_rot": True,
                "use_shuffle": True,
                "num_worker_per_gpu": 0,
                "batch_size_per_gpu": 2,
                "dataset_enlarge_ratio": 1,
                "prefetch_mode": None,
            }
        },
        "network_g": {**TINY_NET, "upscaling_factor": scale},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {
            "optim_g": {"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99]},
            "scheduler": {"type": "MultiStepLR", "milestones": [1000], "gamma": 0.5},
            "total_iter": 4,
            "warmup_iter": -1,
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"},
        },
        "logger": {"print_freq": 1, "save_checkpoint_freq": 2, "use_tb_logger": False},
    }
    if val is not None:
        opt["datasets"]["val_1"] = paired_dataset("tiny_val", val)
        opt["val"] = {"val_freq": 1000, "save_img": False, "metrics": metrics(scale)}
    opt.update(top)
    return opt


def metrics(scale: int) -> dict:
    return {
        "psnr": {"type": "calculate_psnr", "crop_border": scale, "test_y_channel": True},
        "ssim": {"type": "calculate_ssim", "crop_border": scale, "test_y_channel": True},
    }


def write_yaml(path: Path, opt: dict) -> Path:
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    """Wait until `path` exists while `proc` (a `plksr` run) is alive; fail with its output if it ends first."""
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.2)


def run_plksr(*args: str, cwd: Path, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run the installed `plksr` console script (beside this interpreter) in `cwd`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([str(PLKSR), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        raise AssertionError(f"plksr {' '.join(args)} exited {proc.returncode}:\n{tail}")
    return proc


def metrics_report(name: str, scale: int, psnr: float, ref: dict | None = None) -> dict:
    """A small metrics.json dict (Set5 and Set14, bicubic, optional reference) for table tests."""
    entry = {"psnr": psnr, "ssim": 0.91234, "n_images": 5, "bicubic": {"psnr": 28.4, "ssim": 0.81}}
    if ref:
        entry["reference"] = ref
    return {
        "name": name,
        "scale": scale,
        "variant": "PLKSR-tiny",
        "reference": {"key": "R", "source": "s"} if ref else None,
        "datasets": {"Set5": entry, "Set14": {**entry, "psnr": psnr - 3}},
    }


# A BasicSR training log with a resumed run (iterations restart at 1,030) and validation blocks.
TRAIN_LOG = """\
2026-11-28 10:00:00,000 INFO: Start training from epoch: 0, iter: 0
2026-11-28 10:00:01,000 INFO: [tiny..][epoch:  0, iter:      10, lr:(1.000e-03,)] [eta: 0:01:00] l_pix: 5.0000e-02
2026-11-28 10:00:02,000 INFO: [tiny..][epoch:  0, iter:      20, lr:(1.000e-03,)] [eta: 0:01:00] l_pix: 4.0000e-02
2026-11-28 10:00:03,000 INFO: Validation Set5 (iter 20)
\t # psnr: 25.1000\tBest: 25.1000 @ 20 iter
\t # ssim: 0.7000\tBest: 0.7000 @ 20 iter

2026-11-28 10:00:04,000 INFO: [tiny..][epoch:  1, iter:   1,030, lr:(1.000e-03,)] [eta: 0:01:00] l_pix: 3.0000e-02
2026-11-28 10:00:05,000 INFO: Validation Set5
\t # psnr: 26.2000\tBest: 26.2000 @ 1030 iter
"""


def run_python(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -c code` in a fresh interpreter (this one's), for tests that need a clean or disposable process."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)


def make_hr(root: Path, n: int, size: int = 64, seed: int = 0) -> tuple[Path, Path]:
    """`n` smooth random HR images in `root/hr` and a RealESRGANDataset meta_info file (paths relative to `root`)."""
    rng = np.random.default_rng(seed)
    (root / "hr").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        coarse = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        cv2.imwrite(
            str(root / "hr" / f"img{i:03d}.png"), cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        )
    meta = root / "meta_info.txt"
    meta.write_text("".join(f"hr/img{i:03d}.png\n" for i in range(n)))
    return root, meta


def tiny_vgg(path: Path) -> Path:
    """A randomly initialised VGG19 state dict in torchvision's layout, small on disk (each tensor expands a few
    values; loaded, it is a full VGG19): lets the perceptual loss run offline. Not ImageNet's weights."""
    from torchvision.models import vgg19

    g = torch.Generator().manual_seed(0)
    state = {}
    for key, value in vgg19().state_dict().items():
        if value.dim() == 4:  # conv: one random weight per (out, in) pair, the same over the 3x3 window
            std = (2 / value.shape[1]) ** 0.5 / 9
            state[key] = (torch.randn(value.shape[0], value.shape[1], 1, 1, generator=g) * std).expand(value.shape)
        else:
            state[key] = (
                torch.zeros(1).expand(value.shape) if value.dim() == 1 else torch.zeros(1, 1).expand(value.shape)
            )
    torch.save(state, path)
    return path


def real_options(root: Path, stage: str, scale: int = 4, val: tuple[Path, Path] | None = None, **top) -> dict:
    """The shipped `train_RealPLKSR_RealESR{stage}_x{scale}.yml` shrunk for CPU tests on `make_hr(root)`'s images:
    a tiny RealPLKSR (and discriminator), GT patches of 48 -> 32 px, batch 2, pool of 4, 4 iterations."""
    opt = yaml.safe_load((REPO / "options" / "train" / f"train_RealPLKSR_RealESR{stage}_x{scale}.yml").read_text())
    data, meta = make_hr(root / "data", 4)
    opt["name"] = f"tiny_{stage}"
    opt["num_gpu"] = 0
    opt["datasets"]["train"].update(
        dataroot_gt=str(data), meta_info=str(meta), crop_pad_size=48, num_worker_per_gpu=0, batch_size_per_gpu=2
    )
    opt["datasets"]["train"]["gt_size"] = 32
    opt["gt_size"], opt["queue_size"] = 32, 4
    if val is None:
        del opt["datasets"]["val_1"], opt["val"]
    else:
        opt["datasets"]["val_1"] = paired_dataset("tiny_val", val)
        opt["val"]["val_freq"] = 2
    opt["network_g"].update(dim=16, n_blocks=2, kernel_size=7)
    if stage == "GAN":
        opt["network_d"]["num_feat"] = 8
        opt["path"]["pretrain_network_g"] = None
        opt["train"]["perceptual_opt"]["vgg_weights"] = str(tiny_vgg(root / "vgg19_random.pth"))
    opt["train"]["total_iter"] = 4
    opt["train"]["scheduler"]["milestones"] = [4]
    opt["logger"].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    opt.update(top)
    return opt
