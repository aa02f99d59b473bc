"""End-to-end real-world training with the `plksr` command: stage 1 (PLKSRRealESRNetModel) then stage 2
(PLKSRRealESRGANModel, from stage 1's weights) on generated images, the GAN stage killed with SIGKILL and resumed
with --auto_resume, and the GAN stage under torchrun (two CPU processes, Gloo). The perceptual loss uses a randomly
initialised VGG19 (`conftest.tiny_vgg`): ImageNet's weights cannot be downloaded here."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest
import torch

from ..conftest import PLKSR, make_pairs, real_options, run_plksr, wait_for_file, write_yaml
from .test_cli import _free_port

pytestmark = pytest.mark.slow


def test_two_stages_train_and_a_killed_gan_stage_resumes(tmp_path) -> None:
    val = make_pairs(tmp_path / "val", 2, 4, size=32)
    stage1 = write_yaml(tmp_path / "stage1.yml", real_options(tmp_path, "Net", val=val))
    log1 = run_plksr("train", "-opt", str(stage1), cwd=tmp_path).stderr
    models1 = tmp_path / "experiments" / "tiny_Net" / "models"
    assert re.search(r"iter:\s+4, lr:.*l_pix: ", log1) and "Model [PLKSRRealESRNetModel] is created." in log1
    assert (models1 / "net_g_latest.pth").is_file() and (models1 / "net_g_best.pth").is_file()
    best = torch.load(models1 / "net_g_best.pth", weights_only=True)
    assert set(best) == {"params", "params_ema", "architecture", "hyperparameters"}  # EMA (0.999) as the recipe
    assert best["architecture"] == "RealPLKSR" and best["hyperparameters"]["n_blocks"] == 2

    opt = real_options(tmp_path, "GAN", val=val)
    opt["path"]["pretrain_network_g"] = str(models1 / "net_g_latest.pth")
    opt["train"]["total_iter"] = 10_000
    stage2 = write_yaml(tmp_path / "stage2.yml", opt)
    proc = subprocess.Popen(
        [str(PLKSR), "train", "-opt", str(stage2)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    exp = tmp_path / "experiments" / "tiny_GAN"
    wait_for_file(exp / "training_states" / "4.state", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    saved = max(int(p.stem) for p in (exp / "training_states").glob("*.state"))
    assert (exp / "models" / f"net_d_{saved}.pth").is_file()
    total = saved + 2
    resumed = run_plksr(
        "train", "-opt", str(stage2), "--auto_resume", "--force_yml", f"train:total_iter={total}", cwd=tmp_path
    )
    log = resumed.stdout + resumed.stderr
    assert f"Set pretrain_network_d to {exp / 'models' / f'net_d_{saved}.pth'}" in log  # the discriminator too
    assert re.search(rf"Resuming training from epoch: \d+, iter: {saved}\.", log)
    assert re.search(rf"iter:\s+{total}, lr:.*l_g_pix: .*l_g_percep: .*l_g_gan: .*l_d_real: .*l_d_fake: ", log)
    assert {"net_g_latest.pth", "net_d_latest.pth", "net_g_best.pth"} <= {p.name for p in (exp / "models").iterdir()}
    state = torch.load(exp / "training_states" / f"{total}.state", weights_only=True)
    assert len(state["optimizers"]) == len(state["scalers"]) == 2  # net_g and net_d, each with its grad scaler


def test_gan_stage_under_torchrun_on_two_cpu_processes(tmp_path) -> None:
    opt = real_options(tmp_path, "GAN", name="ddp_gan")
    opt["datasets"]["train"]["batch_size_per_gpu"] = 1
    path = write_yaml(tmp_path / "gan.yml", opt)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}"]
    cmd += ["-m", "plksr_arch.train", "-opt", str(path), "--launcher", "pytorch"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    exp = tmp_path / "experiments" / "ddp_gan"
    assert {"net_g_4.pth", "net_d_4.pth", "net_g_latest.pth"} <= {p.name for p in (exp / "models").iterdir()}
    (log,) = exp.glob("train_ddp_gan_*.log")
    assert "world_size: 2" in log.read_text()
    assert re.search(r"iter:\s+4, lr:.*l_g_gan: .*l_d_fake: ", log.read_text())
