"""Our own replacements of basicsr functions, called by our pipelines (basicsr's stay as they are)."""

from __future__ import annotations

import torch

from ..conftest import run_python


def test_resume_reads_the_runs_own_states_on_the_cpu(tmp_path, monkeypatch) -> None:
    """`basicsr_fixes.load_resume_state` (our training pipeline's) auto-resumes from the run's training_states folder,
    whatever the working directory, and maps the state to the CPU."""
    from plksr_arch.training.basicsr_fixes import load_resume_state

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
    state = load_resume_state(opt)
    assert state["iter"] == 40 and opt["path"]["resume_state"] == str(states / "40.state")
    assert opt["path"]["pretrain_network_g"] == str(tmp_path / "run" / "models" / "net_g_40.pth")


def test_init_dist_starts_gloo_without_cuda_and_basicsrs_stays_nccl() -> None:
    """`basicsr_fixes.init_dist('pytorch')` starts a Gloo process group on a machine without CUDA, while basicsr's own
    `init_dist` is still basicsr's (NCCL); in a subprocess, as a process group outlives the test."""
    code = (
        "import os, socket, torch\n"
        "torch.cuda.is_available = lambda: False\n"
        "import plksr_arch, basicsr.utils.dist_util as d, basicsr.utils.options as o\n"
        "from plksr_arch.training.basicsr_fixes import init_dist\n"
        "assert d.init_dist.__module__ == o.init_dist.__module__ == 'basicsr.utils.dist_util'\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
        "os.environ.update(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))\n"
        "init_dist('pytorch')\n"
        "print(torch.distributed.get_backend(), d.get_dist_info())\n"
        "torch.distributed.destroy_process_group()"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "gloo (0, 1)"


def test_latest_training_state(tmp_path) -> None:
    from plksr_arch.training.basicsr_fixes import latest_training_state

    assert latest_training_state(str(tmp_path / "missing")) is None
    for it in (5, 40, 10):
        (tmp_path / f"{it}.state").write_bytes(b"")
    assert latest_training_state(str(tmp_path)) == str(tmp_path / "40.state")


def test_functional_tensor_alias_holds_the_successors_objects_and_leaves_it_alone() -> None:
    """The one global change: `torchvision.transforms.functional_tensor` is a module of its own whose names are the
    objects of `_functional_tensor`; the successor's spec and name are untouched."""
    code = (
        "import plksr_arch\n"
        "import torchvision.transforms._functional_tensor as real\n"
        "spec = real.__spec__\n"
        "import torchvision.transforms.functional_tensor as alias\n"
        "assert alias is not real and real.__spec__ is spec and real.__name__.endswith('._functional_tensor')\n"
        "names = [k for k in vars(real) if not k.startswith('__')]\n"
        "assert names and all(getattr(alias, k) is getattr(real, k) for k in names)\n"
        "print(alias.__name__, len(names) > 10)"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["torchvision.transforms.functional_tensor", "True"]
