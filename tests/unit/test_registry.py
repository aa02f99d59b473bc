"""Registration in BasicSR's registries, the compatibility fixes, and strict loading of official checkpoints."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from plksr_arch import PLKSR, PLKSRModel
from plksr_arch.registration import register


def test_import_registers_arch_and_models() -> None:
    from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY

    assert ARCH_REGISTRY.get("PLKSR") is PLKSR
    assert MODEL_REGISTRY.get("PLKSRModel") is PLKSRModel
    assert MODEL_REGISTRY.get("ESRModel") is PLKSRModel  # the official option files' model_type


def test_reloading_the_modules_registers_the_reloaded_classes() -> None:
    """After reloads (as notebooks and autoreload do) the registries hold the new classes, not the stale ones; in a
    subprocess, since reloading replaces classes that other tests compare against."""
    code = (
        "import importlib, sys, plksr_arch, basicsr\n"
        "from basicsr.utils.registry import ARCH_REGISTRY as A, MODEL_REGISTRY as M\n"
        "old = A.get('PLKSR'), M.get('PLKSRModel')\n"
        "for _ in range(2):\n"
        "    arch = importlib.reload(sys.modules['plksr_arch.archs.plksr_arch'])\n"
        "    model = importlib.reload(sys.modules['plksr_arch.models.plksr_model'])\n"
        "    importlib.reload(sys.modules['plksr_arch.registration']).register_all()\n"
        "    assert A.get('PLKSR') is arch.PLKSR and M.get('PLKSRModel') is model.PLKSRModel\n"
        "    assert M.get('ESRModel') is model.PLKSRModel\n"
        "assert (A.get('PLKSR'), M.get('PLKSRModel')) != old\n"
        "print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_name_held_by_another_class_is_a_clear_error() -> None:
    from basicsr.utils.registry import Registry

    registry = Registry("test")
    register(registry, PLKSR)

    class PLKSR_(torch.nn.Module):
        pass

    PLKSR_.__name__ = "PLKSR"
    with pytest.raises(KeyError, match=r"'PLKSR'.*held by plksr_arch\.archs\.plksr_arch\.PLKSR"):
        register(registry, PLKSR_)


def test_fresh_interpreter_imports_package_then_basicsr() -> None:
    code = (
        "import plksr_arch, basicsr, basicsr.train, basicsr.data.degradations;"
        "from basicsr.utils.registry import ARCH_REGISTRY; assert 'PLKSR' in ARCH_REGISTRY; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_basicsr_resume_reads_the_runs_own_states_on_the_cpu(tmp_path, monkeypatch) -> None:
    """basicsr.train.load_resume_state (as basicsr's own train_pipeline calls it) auto-resumes from the run's
    training_states folder, whatever the working directory, and maps the state to the CPU."""
    import basicsr.train

    states = tmp_path / "run" / "training_states"
    states.mkdir(parents=True)
    for it in (5, 40, 10):
        torch.save({"iter": it, "epoch": 1, "optimizers": [], "schedulers": []}, states / f"{it}.state")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    opt = {
        "auto_resume": True,
        "network_g": {"type": "PLKSR"},
        "path": {"training_states": str(states), "models": str(tmp_path / "run" / "models"), "resume_state": None},
    }
    state = basicsr.train.load_resume_state(opt)
    assert state["iter"] == 40 and opt["path"]["resume_state"] == str(states / "40.state")
    assert opt["path"]["pretrain_network_g"] == str(tmp_path / "run" / "models" / "net_g_40.pth")


def test_basicsr_init_dist_starts_gloo_without_cuda() -> None:
    """basicsr.utils.dist_util.init_dist('pytorch') (NCCL and torch.cuda.set_device in basicsr 1.4.2) starts a Gloo
    process group on a machine without CUDA; in a subprocess, as a process group outlives the test."""
    code = (
        "import os, socket, torch\n"
        "torch.cuda.is_available = lambda: False\n"
        "import plksr_arch, basicsr.utils.dist_util as d\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
        "os.environ.update(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))\n"
        "d.init_dist('pytorch')\n"
        "print(torch.distributed.get_backend(), d.get_dist_info())\n"
        "torch.distributed.destroy_process_group()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "gloo (0, 1)"


def test_latest_training_state(tmp_path) -> None:
    from plksr_arch._compat import latest_training_state

    assert latest_training_state(str(tmp_path / "missing")) is None
    for it in (5, 40, 10):
        (tmp_path / f"{it}.state").write_bytes(b"")
    assert latest_training_state(str(tmp_path)) == str(tmp_path / "40.state")


@pytest.mark.parametrize("wrap", ["params", "params_ema", "module."])
def test_official_checkpoint_loads_strictly_through_basicsr(tmp_path, wrap: str) -> None:
    """A `{'params': ...}` file in the official layout loads with strict=True via BasicSR's load_network."""
    from basicsr.models.base_model import BaseModel

    src = PLKSR(dim=16, n_blocks=2, kernel_size=7, upscaling_factor=2)
    state = src.state_dict()
    ckpt = {"params": {f"module.{k}": v for k, v in state.items()}} if wrap == "module." else {wrap: state}
    path = tmp_path / "official.pth"
    torch.save(ckpt, path)
    dst = PLKSR(dim=16, n_blocks=2, kernel_size=7, upscaling_factor=2)
    model = BaseModel.__new__(BaseModel)
    model.opt = {"dist": False, "num_gpu": 0}
    model.load_network(dst, str(path), strict=True, param_key="params" if wrap == "module." else wrap)
    for k, v in dst.state_dict().items():
        assert torch.equal(v, state[k]), k
