"""Registration in BasicSR's registries (import order, reloads, name clashes) and strict loading of
official checkpoints through BasicSR."""

from __future__ import annotations

import pytest
import torch

from plksr_arch import PLKSR, PLKSRModel
from plksr_arch.registration import register

from ..conftest import run_python


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
    proc = run_python(code)
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
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


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
