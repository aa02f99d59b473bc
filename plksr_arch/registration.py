"""What plksr-arch adds to BasicSR's registries, under which names, and which other projects' names our commands read
as ours.

Additions only: each of our classes is registered under its own name (`ours()`); no entry BasicSR or another project
holds is replaced or removed. Registration is planned before any registry is written (every class imported, every
name checked), so an error registers nothing, and it never raises into the host's `import basicsr`. A name another
package already holds (the official PLKSR code registers `PLKSR` too) stays with that package: one warning line names
both, the other names are registered, and `CLASHES` keeps the line for our commands, which stop with it when an
option file needs the name.

`FOREIGN_NAMES` are the type names of BasicSR, Real-ESRGAN and the official PLKSR option files that `plksr train/test`
(and `python -m plksr_arch.train/test`, the pipelines, the demo) read as our classes: `options.load_options` rewrites
them and logs each mapping once. Outside our commands those names keep their owners' meaning.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

logger = logging.getLogger("plksr")

# (BasicSR registry, name, module defining the class of that name); the networks are those of `archs.registry`.
CLASSES: tuple[tuple[str, str, str], ...] = (
    ("MODEL_REGISTRY", "PLKSRModel", "plksr_arch.models.plksr_model"),
    ("MODEL_REGISTRY", "PLKSRRealESRNetModel", "plksr_arch.models.realesr_model"),
    ("MODEL_REGISTRY", "PLKSRRealESRGANModel", "plksr_arch.models.realesr_model"),
    ("DATASET_REGISTRY", "PLKSRPairedImageDataset", "plksr_arch.datasets.images"),
    ("DATASET_REGISTRY", "PLKSRSingleImageDataset", "plksr_arch.datasets.images"),
    ("DATASET_REGISTRY", "PLKSRRealESRGANPairedDataset", "plksr_arch.datasets.images"),
    ("DATASET_REGISTRY", "PLKSRRealESRGANDataset", "plksr_arch.datasets.realesrgan"),
    ("LOSS_REGISTRY", "PLKSRPerceptualLoss", "plksr_arch.models.losses"),
)


def ours() -> list[tuple[str, str, type]]:
    """(BasicSR registry, name, class) of everything we register: every architecture spec, then `CLASSES`."""
    from .archs.registry import SPECS

    networks = [("ARCH_REGISTRY", spec.name, spec.cls) for spec in SPECS]
    return networks + [
        (registry, name, getattr(importlib.import_module(module), name)) for registry, name, module in CLASSES
    ]


# Where an option file names a class (`model_type`, `datasets.*.type`, `train.*_opt.type`) -> {their name: ours}.
FOREIGN_NAMES: dict[str, dict[str, str]] = {
    "model": {
        "ESRModel": "PLKSRModel",  # the official PLKSR option files
        "RealESRNetModel": "PLKSRRealESRNetModel",
        "RealESRGANModel": "PLKSRRealESRGANModel",
    },
    "dataset": {
        "PairedImageDataset": "PLKSRPairedImageDataset",
        "SingleImageDataset": "PLKSRSingleImageDataset",
        "RealESRGANDataset": "PLKSRRealESRGANDataset",
        "RealESRGANPairedDataset": "PLKSRRealESRGANPairedDataset",
    },
    "loss": {"PerceptualLoss": "PLKSRPerceptualLoss"},
}

CLASHES: dict[str, str] = {}  # our name -> the warning line of the package that holds it
_failure: list[BaseException] = []  # an unexpected error of the registration, re-raised by `check`


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
        if CLASHES.get(name) != line:
            logger.warning(line)
    CLASHES.clear()
    CLASHES.update(clashes)


def register_safely() -> None:
    """`register_all` as the `import basicsr` hook runs it: an unexpected error is logged in one line and kept for
    `check`, so the host's import goes on with BasicSR untouched."""
    try:
        register_all()
    except Exception as err:  # noqa: BLE001 (kept and re-raised by `check` in our commands)
        _failure.append(err)
        logger.warning(f"plksr-arch: nothing registered in BasicSR ({type(err).__name__}: {err})")


def check() -> None:
    """Make sure basicsr is imported and our registration ran; re-raise its unexpected error (a bug) if it failed."""
    import basicsr  # noqa: F401  (its import runs the registration)

    if _failure:
        raise RuntimeError("plksr-arch's registration in BasicSR failed") from _failure[0]
