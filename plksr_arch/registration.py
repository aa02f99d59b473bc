"""Register PLKSR and RealPLKSR (ARCH_REGISTRY) and our models (MODEL_REGISTRY) in BasicSR; idempotent, reload-safe."""

from __future__ import annotations

from typing import Any

from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY, Registry

from .archs.plksr_arch import PLKSR
from .archs.realplksr_arch import RealPLKSR
from .models.plksr_model import PLKSRModel
from .models.realesr_model import RealESRGANModel, RealESRNetModel


def _qualname(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def register(registry: Registry, obj: Any, name: str | None = None) -> None:
    """Register `obj` under `name`; the same class again (also after a module reload) is a no-op.

    Raises:
        KeyError: the name is already held by a different class.
    """
    name = name or obj.__name__
    held = registry._obj_map.get(name)
    if held is not None and _qualname(held) != _qualname(obj):
        raise KeyError(
            f"cannot register {_qualname(obj)} as '{name}' in BasicSR's {registry._name} registry: "
            f"the name is held by {_qualname(held)}; import only one package that provides '{name}'"
        )
    registry._obj_map[name] = obj


def replace(registry: Registry, obj: Any) -> None:
    """Register `obj` under its name in place of BasicSR's class of that name, which stays registered as
    `<name>_basicsr` (BasicSR's own convention for the classes it overrides); idempotent."""
    name = obj.__name__
    held = registry._obj_map.get(name)
    if held is not None and _qualname(held) != _qualname(obj):
        if not held.__module__.startswith("basicsr."):
            raise KeyError(f"cannot replace '{name}' in BasicSR's {registry._name} registry: it is {_qualname(held)}")
        registry._obj_map[f"{name}_basicsr"] = held
    registry._obj_map[name] = obj


def register_all() -> None:
    """PLKSR and RealPLKSR (archs); PLKSRModel, ESRModel (the name the official option files use for it),
    RealESRNetModel and RealESRGANModel (models), RealESRGANDataset and RealESRGANPairedDataset (datasets): BasicSR
    holds its own of these as `<name>_basicsr`. PairedImageDataset and SingleImageDataset (`data.images`: named read
    errors, checked pairs) replace BasicSR's, which stay as `<name>_basicsr`."""
    register(ARCH_REGISTRY, PLKSR)
    register(ARCH_REGISTRY, RealPLKSR)
    register(MODEL_REGISTRY, PLKSRModel)
    register(MODEL_REGISTRY, PLKSRModel, "ESRModel")
    register(MODEL_REGISTRY, RealESRNetModel)
    register(MODEL_REGISTRY, RealESRGANModel)
    from .data import realesrgan_dataset  # noqa: F401  (registers RealESRGANDataset when imported)
    from .data.images import PairedImageDataset, RealESRGANPairedDataset, SingleImageDataset

    replace(DATASET_REGISTRY, PairedImageDataset)
    replace(DATASET_REGISTRY, SingleImageDataset)
    register(DATASET_REGISTRY, RealESRGANPairedDataset)
