"""The basicsr compatibility fixes, by their behaviour through basicsr's own functions."""

from __future__ import annotations

import torch

from ..conftest import run_python


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
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "gloo (0, 1)"


def test_latest_training_state(tmp_path) -> None:
    from plksr_arch._compat import latest_training_state

    assert latest_training_state(str(tmp_path / "missing")) is None
    for it in (5, 40, 10):
        (tmp_path / f"{it}.state").write_bytes(b"")
    assert latest_training_state(str(tmp_path)) == str(tmp_path / "40.state")
