"""How plksr-arch adds its classes to BasicSR's registries.

Additions only: each of our classes is registered under its own name (`ours()`); no entry BasicSR or another project
holds is replaced or removed. Registration is planned before any registry is written (every class imported, every
name checked), so an error registers nothing, and it never raises into the host's `import basicsr`. A name another
package already holds (the official PLKSR code registers `PLKSR` too) stays with that package: one warning line names
both, the other names are registered, and `names.CLASHES` keeps the line for our commands, which stop with it when an
option file needs the name.

The names other projects' option files use for ours (`FOREIGN_NAMES`) and what registration found (`CLASHES`,
`FAILURE`) are in `training.names`, which `training.options` reads without importing the classes.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from plksr_arch.training import names

logger = logging.getLogger("plksr")

# (BasicSR registry, name, module defining the class of that name); the networks are those of `archs.registry`.
CLASSES: tuple[tuple[str, str, str], ...] = (
    ("MODEL_REGISTRY", "PLKSRModel", "plksr_arch.training.models.plksr_model"),
    ("MODEL_REGISTRY", "PLKSRRealESRNetModel", "plksr_arch.training.models.realesr_model"),
    ("MODEL_REGISTRY", "PLKSRRealESRGANModel", "plksr_arch.training.models.realesr_model"),
    ("DATASET_REGISTRY", "PLKSRPairedImageDataset", "plksr_arch.training.datasets.images"),
    ("DATASET_REGISTRY", "PLKSRSingleImageDataset", "plksr_arch.training.datasets.images"),
    ("DATASET_REGISTRY", "PLKSRRealESRGANPairedDataset", "plksr_arch.training.datasets.images"),
    ("DATASET_REGISTRY", "PLKSRRealESRGANDataset", "plksr_arch.training.datasets.realesrgan"),
    ("LOSS_REGISTRY", "PLKSRPerceptualLoss", "plksr_arch.training.models.losses"),
)


def ours() -> list[tuple[str, str, type]]:
    """(BasicSR registry, name, class) of everything we register: every architecture spec, then `CLASSES`."""
    from plksr_arch.archs.registry import SPECS

    networks = [("ARCH_REGISTRY", spec.name, spec.cls) for spec in SPECS]
    return networks + [
        (registry, name, getattr(importlib.import_module(module), name)) for registry, name, module in CLASSES
    ]


def _qualname(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _clash(registry: str, name: str, held: Any) -> str:
    package = held.__module__.split(".")[0]
    return (
        f"plksr-arch: BasicSR's {registry} already holds '{name}' from the package '{package}' ({_qualname(held)}); "
        f"it keeps it and plksr-arch's {name} is not registered: use the two packages in separate processes"
    )


def register_all() -> None:
    """Register every class of `ours()` whose name is free or held by our own class (a module reload replaces it);
    record and log a clash for each name another package holds."""
    from basicsr.utils import registry as basicsr_registries

    plan = [(getattr(basicsr_registries, registry), registry, name, cls) for registry, name, cls in ours()]
    clashes = {}
    for registry, registry_name, name, cls in plan:
        held = registry._obj_map.get(name)
        if held is not None and _qualname(held) != _qualname(cls):
            clashes[name] = _clash(registry_name, name, held)
    for registry, _, name, cls in plan:
        if name not in clashes:
            registry._obj_map[name] = cls
    for name, line in clashes.items():
        if names.CLASHES.get(name) != line:
            logger.warning(line)
    names.CLASHES.clear()
    names.CLASHES.update(clashes)


def register_safely() -> None:
    """`register_all` as the `import basicsr` hook runs it: an unexpected error is logged in one line and kept for
    `check`, so the host's import goes on with BasicSR untouched."""
    try:
        register_all()
    except Exception as err:  # noqa: BLE001 (kept and re-raised by `check` in our commands)
        names.FAILURE.append(err)
        logger.warning(f"plksr-arch: nothing registered in BasicSR ({type(err).__name__}: {err})")
