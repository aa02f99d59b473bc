"""Every basicsr 1.4.2 / torchvision workaround plksr-arch needs, in one place, installed once by `install()`.

basicsr 1.4.2 (2022) is the last release and predates the current stack. Each fix below carries its reason:

- torchvision >= 0.17 removed `torchvision.transforms.functional_tensor`; basicsr's degradations import it at package
  import time, so an import finder (last on `sys.meta_path`, so a torchvision that still has it wins) resolves the
  name to its private successor.
- `import plksr_arch` must stay cheap (the `plksr` command answers `--help` without torch) yet register PLKSR for
  BasicSR projects: a post-import hook patches basicsr and registers our classes right after `import basicsr` has
  run, whoever imports it; if basicsr is already imported, that happens at once.
- `basicsr.train.load_resume_state` maps every tensor to CUDA (crashes on CPU-only machines) and its auto-resume
  looks under `./experiments` of the working directory instead of the run's own `training_states` folder.
- basicsr's `BaseModel.load_network` (pretrained and resumed networks) and `load_resume_state` call `torch.load`
  bare: a pickle payload, a truncated file or another architecture's weights end in a traceback (and strict-load
  mismatches in a dump of every key). Both read through `checkpoint.read_torch_file` (weights_only, one-line
  errors naming the file); networks load through `checkpoint.load_into` (the first mismatching key and shapes).
- `basicsr.utils.dist_util.init_dist` hard-codes NCCL and `torch.cuda.set_device`, so `--launcher pytorch` fails
  without CUDA; the replacement picks NCCL with CUDA and Gloo without.
- `basicsr.utils.get_root_logger` ignores `log_file` once the logger exists (e.g. after `build_network` logged), so
  a second run in one process (`plksr demo`: train, then test) would write no log file; `run_logger` attaches it.
- `basicsr.archs.vgg_arch.VGGFeatureExtractor` (PerceptualLoss) loads VGG weights from a fixed path relative to the
  working directory and otherwise downloads them (a hang offline): `vgg_weights_at` points it at the options' file.
- `RealESRNetModel`/`RealESRGANModel` build DiffJPEG, USMSharp and the training-pair pool with `.cuda()`: that is fixed
  by our subclasses (`models/realesr_model.py`), which reuse BasicSR's degradation code on any device.
- basicsr's DiffJPEG returns a strided view (HWC order, padded to 16) that its own `filter2D` cannot `.view()` on
  current torch (the second blur of RealESRNet's degradation fails): `diff_jpeg` returns contiguous tensors.
- lmdb >= 2 refuses to open one environment twice in a process, which basicsr's paired LMDB dataset does: that is
  fixed by the `lmdb<2` pin in setup.py, not by code.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import logging
import os
import os.path as osp
import sys
import warnings
from collections.abc import Callable, Iterator
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

_installed = False


class _FunctionalTensorAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports the removed `torchvision.transforms.functional_tensor` as `torchvision.transforms._functional_tensor`."""

    name = "torchvision.transforms.functional_tensor"

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname == self.name else None

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module("torchvision.transforms._functional_tensor")

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the successor module is already executed."""


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls `callback` once, right after the top-level module `name` has been executed by whichever import."""

    def __init__(self, name: str, callback: Callable[[], None]) -> None:
        self.name, self.callback = name, callback

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        finders = (f for f in sys.meta_path if f is not self and hasattr(f, "find_spec"))
        spec = next((s for s in (f.find_spec(fullname, path, target) for f in finders) if s is not None), None)
        if spec is None or spec.loader is None:
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            sys.meta_path.remove(self)
            self.callback()

        spec.loader.exec_module = exec_module
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
    """basicsr's `load_resume_state`, with auto-resume under the run's own folder and tensors mapped to CPU."""
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


def load_network(self: Any, net: Any, load_path: str, strict: bool = True, param_key: str | None = "params") -> None:
    """basicsr's `BaseModel.load_network` through `checkpoint.load_into`."""
    from .checkpoint import load_into

    net = self.get_bare_model(net)
    logging.getLogger("basicsr").info(f"Loading {type(net).__name__} model from {load_path} ({param_key}).")
    load_into(net, load_path, param_key=param_key, strict=strict)


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


@contextlib.contextmanager
def vgg_weights_at(path: str) -> Iterator[None]:
    """Within the block, BasicSR's VGGFeatureExtractor loads its weights from `path` (which must exist: otherwise it
    would download them)."""
    import basicsr.archs.vgg_arch as vgg_arch

    if not osp.isfile(path):
        raise FileNotFoundError(f"{path}: no such VGG weights file")
    saved, vgg_arch.VGG_PRETRAIN_PATH = vgg_arch.VGG_PRETRAIN_PATH, path
    try:
        with warnings.catch_warnings():  # it builds torchvision's VGG with the deprecated `pretrained=False`
            warnings.filterwarnings("ignore", message="(The parameter 'pretrained'|Arguments other than a weight)")
            yield
    finally:
        vgg_arch.VGG_PRETRAIN_PATH = saved


def _patch_basicsr() -> None:
    """Replace basicsr's CUDA-only functions (it is imported by now), then register our classes."""
    import basicsr.models.base_model
    import basicsr.train
    import basicsr.utils.dist_util
    import basicsr.utils.options

    from .registration import register_all

    basicsr.utils.dist_util.init_dist = init_dist
    basicsr.utils.options.init_dist = init_dist
    basicsr.train.load_resume_state = load_resume_state
    basicsr.models.base_model.BaseModel.load_network = load_network
    register_all()


def install() -> None:
    """Install the import fixes (no import of torch or basicsr here); patch and register once basicsr is imported,
    at once if it already is. Safe to call again."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.meta_path.append(_FunctionalTensorAlias())
    if "basicsr" in sys.modules:
        _patch_basicsr()
    else:
        sys.meta_path.insert(0, _AfterImport("basicsr", _patch_basicsr))
