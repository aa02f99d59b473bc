"""plksr-arch: PLKSR (Partial Large Kernel CNNs for Efficient Super-Resolution) as a BasicSR plugin.

`import plksr_arch` imports neither torch nor basicsr. It makes `torchvision.transforms.functional_tensor` importable
where torchvision lacks it (basicsr 1.4.2 needs it), and once basicsr is imported, by anyone, it adds our classes to
BasicSR's registries under our own names (`registration.ours()`: PLKSR, RealPLKSR, PLKSRModel, ...). It replaces no
function, method, global or registry entry of basicsr, torch, torchvision or cv2. The public names below are imported
on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from plksr_arch import _compat
from plksr_arch.version import __version__

_compat.install()

# public name -> the submodule that defines it
_PUBLIC = {
    "PLKSR": "archs",
    "PRESETS": "archs",
    "plksr": "archs",
    "plksr_tiny": "archs",
    "RealPLKSR": "archs",
    "realplksr": "archs",
    "load_model": "weights.read",
    "Upscaler": "inference.upscaler",
    "VideoSettings": "inference.video_formats",
    "PLKSRModel": "training.models",
}

__all__ = [
    "PLKSR",
    "PRESETS",
    "PLKSRModel",
    "RealPLKSR",
    "Upscaler",
    "VideoSettings",
    "__version__",
    "load_model",
    "plksr",
    "plksr_tiny",
    "realplksr",
]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'plksr_arch' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
