"""What BasicSR 1.4.2 needs to run on the current stack, and the one global change plksr-arch makes.

The global change: torchvision >= 0.17 removed `torchvision.transforms.functional_tensor`, which basicsr's
degradations import when basicsr is imported, so `install()` appends an import finder (last on `sys.meta_path`: a
torchvision that still has the module wins) that makes that name a new module holding the same objects as its private
successor, `torchvision.transforms._functional_tensor` (whose own spec and attributes stay untouched).

Registration: `import plksr_arch` stays cheap (the `plksr` command answers `--help` without torch), so it does not
import basicsr; a second finder runs `registration.register_all` once, right after `import basicsr` has run, whoever
imports it (at once if basicsr is already imported). Registering only adds names (see `registration`) and never
breaks the host's `import basicsr`.

Everything else below is called by plksr-arch's own pipelines and classes only; no basicsr function, method or
global is replaced:

- `load_resume_state`: basicsr's maps every tensor to CUDA (it crashes on CPU-only machines) and its auto-resume looks
  under `./experiments` of the working directory instead of the run's own `training_states` folder.
- `init_dist`: basicsr's hard-codes NCCL and `torch.cuda.set_device`, so `--launcher pytorch` fails without CUDA.
- `run_logger`: basicsr's `get_root_logger` ignores `log_file` once the logger exists (e.g. after `build_network`
  logged), so a second run in one process (`plksr demo`: train, then test) would write no log file.
- `diff_jpeg`: basicsr's DiffJPEG returns a strided view that its own `filter2D` cannot `.view()` on current torch.
- BasicSR's PerceptualLoss reads VGG weights from one module-level path relative to the working directory, else
  downloads them: `models.losses.PLKSRPerceptualLoss` takes the path as an argument instead.
- lmdb >= 2 refuses to open one environment twice in a process, which basicsr's paired LMDB dataset does: that is
  fixed by the `lmdb<2` pin in setup.py, not by code.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import logging
import os
import os.path as osp
import sys
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

_installed = False


class _FunctionalTensorAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports the removed `torchvision.transforms.functional_tensor` as a module holding the names of
    `torchvision.transforms._functional_tensor` (the same objects); consulted only when no other finder has it."""

    name = "torchvision.transforms.functional_tensor"
    successor = "torchvision.transforms._functional_tensor"

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname == self.name else None

    def exec_module(self, module: ModuleType) -> None:
        real = importlib.import_module(self.successor)
        module.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})
        module.__doc__ = f"Alias of {self.successor} made by plksr-arch for basicsr 1.4.2."


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls `callback` once, right after the top-level module `name` has been executed by whichever import; the
    module's loader is left as it was found."""

    def __init__(self, name: str, callback: Callable[[], None]) -> None:
        self.name, self.callback = name, callback

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        finders = (f for f in sys.meta_path if f is not self and hasattr(f, "find_spec"))
        spec = next((s for s in (f.find_spec(fullname, path, target) for f in finders) if s is not None), None)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader

        def exec_module(module: ModuleType) -> None:
            del loader.exec_module  # the instance attribute set below: the loader's own method is back
            type(loader).exec_module(loader, module)
            sys.meta_path.remove(self)
            self.callback()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


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

    from .checkpoint import CheckpointError, read_torch_file

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


def _register() -> None:
    from .registration import register_safely

    register_safely()


def install() -> None:
    """Install the torchvision alias and the registration that follows `import basicsr` (at once if basicsr is
    already imported); nothing is imported here. Safe to call again."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.meta_path.append(_FunctionalTensorAlias())
    if "basicsr" in sys.modules:
        _register()
    else:
        sys.meta_path.insert(0, _AfterImport("basicsr", _register))
