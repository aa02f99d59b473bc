"""Every basicsr 1.4.2 / torchvision workaround plksr-arch needs, in one place, applied once by `apply()`.

basicsr 1.4.2 (2022) is the last release and predates the current stack. Each fix below carries its reason:

- torchvision >= 0.17 removed `torchvision.transforms.functional_tensor`; basicsr's degradations import it at package
  import time, so the module is aliased to its private successor before basicsr is first imported.
- `basicsr.train.load_resume_state` maps every tensor to CUDA (crashes on CPU-only machines) and its auto-resume
  looks under `./experiments` of the working directory instead of the run's own `training_states` folder.
- `basicsr.utils.dist_util.init_dist` hard-codes NCCL and `torch.cuda.set_device`, so `--launcher pytorch` fails
  without CUDA; the replacement picks NCCL with CUDA and Gloo without.
- `basicsr.utils.get_root_logger` ignores `log_file` once the logger exists (e.g. after `build_network` logged), so
  a second run in one process (`plksr demo`: train, then test) would write no log file; `run_logger` attaches it.
- lmdb >= 2 refuses to open one environment twice in a process, which basicsr's paired LMDB dataset does: that is
  fixed by the `lmdb<2` pin in setup.py, not by code.
"""

from __future__ import annotations

import importlib
import logging
import os
import os.path as osp
import sys
from typing import Any

import torch

_applied = False


def _alias_functional_tensor() -> None:
    """Point the removed `torchvision.transforms.functional_tensor` at `_functional_tensor`."""
    name = "torchvision.transforms.functional_tensor"
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        sys.modules[name] = importlib.import_module("torchvision.transforms._functional_tensor")


def init_dist(launcher: str, backend: str | None = None, **kwargs: Any) -> None:
    """Start torch.distributed for `--launcher pytorch|slurm` with NCCL on CUDA and Gloo on CPU."""
    if launcher != "pytorch":
        from basicsr.utils import dist_util

        dist_util._init_dist_slurm(backend or "nccl", **kwargs)
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", os.environ["RANK"])) % torch.cuda.device_count())
        backend = backend or "nccl"
    else:
        backend = "gloo" if backend in (None, "nccl") else backend
    torch.distributed.init_process_group(backend=backend)


def latest_training_state(training_states_dir: str) -> str | None:
    """Path of the highest-iteration `<iter>.state` file in a run's training_states folder, or None."""
    if not osp.isdir(training_states_dir):
        return None
    iters = [int(f[: -len(".state")]) for f in os.listdir(training_states_dir) if f.endswith(".state")]
    return osp.join(training_states_dir, f"{max(iters)}.state") if iters else None


def load_resume_state(opt: dict) -> dict | None:
    """basicsr's `load_resume_state`, with auto-resume under the run's own folder and tensors mapped to CPU."""
    from basicsr.utils import check_resume

    path = latest_training_state(opt["path"]["training_states"]) if opt.get("auto_resume") else None
    path = path or opt["path"].get("resume_state")
    if not path:
        return None
    opt["path"]["resume_state"] = path
    # Training states hold optimizer/scheduler dicts (a collections.Counter among them), which weights_only
    # unpickling accepts; CPU mapping keeps them loadable anywhere, optimizers move them to the params' device.
    state = torch.load(path, map_location="cpu", weights_only=True)
    check_resume(opt, state["iter"])
    return state


def run_logger(log_file: str) -> logging.Logger:
    """BasicSR's root logger writing to `log_file` (and no earlier run's file), whenever it was first created."""
    from basicsr.utils import get_root_logger
    from basicsr.utils.dist_util import get_dist_info

    logger = get_root_logger(logger_name="basicsr", log_level=logging.INFO, log_file=log_file)
    if get_dist_info()[0] != 0:  # as BasicSR: other ranks log errors only, to the console
        logger.setLevel(logging.ERROR)
        return logger
    path = osp.abspath(log_file)
    for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler) and h.baseFilename != path]:
        logger.removeHandler(handler)
        handler.close()
    if not any(isinstance(h, logging.FileHandler) for h in logger.handlers):
        handler = logging.FileHandler(path, "w")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


def apply() -> None:
    """Apply every fix once; safe to call again."""
    global _applied
    if _applied:
        return
    _alias_functional_tensor()
    import basicsr.train
    import basicsr.utils.dist_util
    import basicsr.utils.options

    basicsr.utils.dist_util.init_dist = init_dist
    basicsr.utils.options.init_dist = init_dist
    basicsr.train.load_resume_state = load_resume_state
    _applied = True
