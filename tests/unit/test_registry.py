"""Registration in BasicSR's registries, the compatibility fixes, and strict loading of official checkpoints."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch

import plksr_arch
from plksr_arch import PLKSR, PLKSRModel
from plksr_arch.registration import register


def test_import_registers_arch_and_models() -> None:
    from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY

    assert ARCH_REGISTRY.get("PLKSR") is PLKSR
    assert MODEL_REGISTRY.get("PLKSRModel") is PLKSRModel
    assert MODEL_REGISTRY.get("ESRModel") is PLKSRModel  # the official option files' model_type


def test_import_and_reload_twice_is_harmless() -> None:
    from basicsr.utils.registry import ARCH_REGISTRY

    for _ in range(2):
        importlib.reload(plksr_arch.archs.plksr_arch)
        importlib.reload(plksr_arch.registration)
        plksr_arch.registration.register_all()
    assert ARCH_REGISTRY.get("PLKSR").__qualname__ == "PLKSR"


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


def test_compat_replaces_cuda_only_basicsr_functions() -> None:
    import basicsr.train
    import basicsr.utils.options

    from plksr_arch import _compat

    assert basicsr.train.load_resume_state is _compat.load_resume_state
    assert basicsr.utils.options.init_dist is _compat.init_dist


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
