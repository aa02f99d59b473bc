"""The plugin from the outside: another project's BasicSR training script with `import plksr_arch` added trains PLKSR
on a CPU with BasicSR's behaviour for the rest, and weights written by training rebuild the trained network (even the
constructor arguments its tensors cannot show) in `plksr infer`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from plksr_arch import PLKSR, RealPLKSR

from ..conftest import make_pairs, metrics, paired_dataset, run_plksr, train_options, write_yaml

pytestmark = pytest.mark.slow

# Another project's train.py, as BasicSR projects (Real-ESRGAN, HAT, ...) write it, with our import added.
HOST_TRAIN = """
import os.path as osp

import plksr_arch  # noqa: F401
from basicsr.train import train_pipeline

if __name__ == "__main__":
    train_pipeline(osp.dirname(osp.abspath(__file__)))
"""


def test_basicsr_train_pipeline_with_the_import_trains_plksr_on_a_cpu(tmp_path: Path) -> None:
    """BasicSR's own `train_pipeline` (its option parsing, its dataset classes, its loop) builds our PLKSRModel
    and PLKSR by their names, trains on the CPU, validates and saves weights that record the network."""
    data = make_pairs(tmp_path / "data", 4, 2)
    opt = train_options(data, val=data, name="host")
    opt["train"]["total_iter"] = 2
    opt["val"] = {"val_freq": 2, "save_img": False, "metrics": metrics(2)}
    opt["datasets"]["val_1"] = paired_dataset("host_val", data)
    write_yaml(tmp_path / "host.yml", opt)
    (tmp_path / "train.py").write_text(HOST_TRAIN)
    proc = subprocess.run(
        [sys.executable, "train.py", "-opt", "host.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    exp = tmp_path / "experiments" / "host"
    log = next(exp.glob("train_host_*.log")).read_text()
    assert "Dataset [PairedImageDataset] - tiny_train is built." in log  # BasicSR's dataset, by its name
    assert "Model [PLKSRModel] is created." in log and "Validation host_val" in log
    saved = torch.load(exp / "models" / "net_g_latest.pth", weights_only=True)
    assert saved["architecture"] == "PLKSR" and saved["hyperparameters"]["dim"] == 16


def _trained(tmp_path: Path, network: dict) -> tuple[Path, dict]:
    data = make_pairs(tmp_path / "data", 4, 2)
    opt = train_options(data, name="arch")
    opt["train"]["total_iter"] = 2
    opt["network_g"] = {**network, "upscaling_factor": 2}
    run_plksr("train", "-opt", str(write_yaml(tmp_path / "arch.yml", opt)), cwd=tmp_path)
    return tmp_path / "experiments" / "arch" / "models" / "net_g_latest.pth", opt["network_g"]


def _reference(weights: Path, network: dict, lr: np.ndarray) -> np.ndarray:
    """The trained network, built from the option file's arguments, on a 16-bit BGR image, as `plksr infer` rounds
    it (fp32)."""
    kwargs = {k: v for k, v in network.items() if k != "type"}
    net = {"PLKSR": PLKSR, "RealPLKSR": RealPLKSR}[network["type"]](**kwargs).eval()
    net.load_state_dict(torch.load(weights, weights_only=True)["params"])
    x = torch.from_numpy(lr[..., ::-1].astype(np.float32) / 65535).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = net(x)[0].permute(1, 2, 0).numpy()[..., ::-1]
    return (np.clip(y, 0, 1) * 65535).round().astype(np.int64)


def _infer(tmp_path: Path, weights: Path, *extra: str) -> tuple[np.ndarray, subprocess.CompletedProcess]:
    out = tmp_path / f"out{len(extra)}"
    proc = run_plksr(
        "infer", str(weights), str(tmp_path / "lr.png"), "-o", str(out), "--precision", "fp32", *extra, cwd=tmp_path
    )
    return cv2.imread(str(out / "lr.png"), cv2.IMREAD_UNCHANGED).astype(np.int64), proc


@pytest.mark.parametrize(
    ("network", "hidden"),
    [
        ({"type": "RealPLKSR", "dim": 16, "n_blocks": 2, "kernel_size": 7, "norm_groups": 8}, "norm_groups=8"),
        ({"type": "PLKSR", "dim": 16, "n_blocks": 2, "kernel_size": 7, "with_idt": True}, "with_idt=true"),
    ],
    ids=["RealPLKSR norm_groups 8", "PLKSR with_idt"],
)
def test_trained_weights_rebuild_the_trained_network_in_plksr_infer(tmp_path: Path, network: dict, hidden: str) -> None:
    """`net_g_latest.pth` stores the architecture and every constructor argument, so `plksr infer` computes what
    the trained network computes (compared on a 16-bit image, 257 levels per 8-bit level). Without them (as in the
    official releases) the hidden argument is assumed at its default with a warning naming `--arch-opt`, which then
    reproduces the network."""
    weights, network = _trained(tmp_path, network)
    gt = cv2.imread(str(tmp_path / "data" / "GT" / "img000.png")).astype(np.uint16) * 257
    lr = cv2.resize(gt, (20, 16), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "lr.png"), lr)
    expected = _reference(weights, network, lr)
    stored, _ = _infer(tmp_path, weights)
    assert np.abs(stored - expected).max() <= 8  # fp32 rounding (channels_last, the PLKC route): 1/32 of a level

    bare = tmp_path / "bare.pth"  # the same tensors, no stored arguments
    torch.save({"params": torch.load(weights, weights_only=True)["params"]}, bare)
    assumed, proc = _infer(tmp_path, bare)
    key, _ = hidden.split("=")
    assert f"{bare}: stores no constructor arguments and its weights cannot show {key}" in proc.stdout
    assert f"pass --arch-opt {key}=VALUE" in proc.stdout
    assert (
        np.abs(assumed - expected).max() > 32
    )  # another function (measured: 59 for with_idt, far more for norm_groups)
    overridden, _ = _infer(tmp_path, bare, "--arch-opt", hidden)
    assert np.abs(overridden - expected).max() <= 8
