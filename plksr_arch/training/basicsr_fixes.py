"""What BasicSR 1.4.2 needs on the current stack, called by plksr-arch's own pipelines and classes only; no basicsr
function, method or global is replaced:

- `load_resume_state`: basicsr's maps every tensor to CUDA (it crashes on CPU-only machines) and its auto-resume looks
  under `./experiments` of the working directory instead of the run's own `training_states` folder.
- `init_dist`: basicsr's hard-codes NCCL and `torch.cuda.set_device`, so `--launcher pytorch` fails without CUDA.
- `run_logger`: basicsr's `get_root_logger` ignores `log_file` once the logger exists (e.g. after `build_network`
  logged), so a second run in one process (`plksr demo`: train, then test) would write no log file.
- `diff_jpeg`: basicsr's DiffJPEG returns a strided view that its own `filter2D` cannot `.view()` on current torch.
- BasicSR's PerceptualLoss reads VGG weights from one module-level path relative to the working directory, else
  downloads them: `training.models.losses.PLKSRPerceptualLoss` takes the path as an argument instead.
- lmdb >= 2 refuses to open one environment twice in a process, which basicsr's paired LMDB dataset does: that is
  fixed by the `lmdb<2` pin in setup.py, not by code.
"""

from __future__ import annotations

import logging
import os
import os.path as osp
from typing import Any


def init_dist(launcher: str, backend: str | None = None, **kwargs: Any) -> None:
    """Start torch.distributed for `--launcher pytorch|slurm` with NCCL on CUDA and Gloo on CPU."""
    import torch

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
    """The resume state of a run (basicsr's `load_resume_state`, with auto-resume under the run's own folder and
    tensors mapped to the CPU); sets `path.resume_state` and, as basicsr's `check_resume`, the pretrained paths."""
    from basicsr.utils import check_resume

    from plksr_arch.weights.read import CheckpointError, read_torch_file

    path = latest_training_state(opt["path"]["training_states"]) if opt.get("auto_resume") else None
    path = path or opt["path"].get("resume_state")
    if not path:
        return None
    opt["path"]["resume_state"] = path
    # Training states hold optimizer/scheduler dicts (a collections.Counter among them), which weights_only
    # unpickling accepts; CPU mapping keeps them loadable anywhere, optimizers move them to the params' device.
    state = read_torch_file(path, "training state")
    if not (isinstance(state, dict) and isinstance(state.get("iter"), int)):
        raise CheckpointError(f"{path}: not a BasicSR training state (no 'iter' entry)")
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


def diff_jpeg() -> Any:
    """basicsr's non-differentiable DiffJPEG (JPEG compression of a batch at per-image qualities) with a contiguous
    output."""
    from basicsr.utils import DiffJPEG

    class _ContiguousDiffJPEG(DiffJPEG):
        def forward(self, x: Any, quality: Any) -> Any:
            return super().forward(x, quality=quality).contiguous()

    return _ContiguousDiffJPEG(differentiable=False)
