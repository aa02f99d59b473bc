"""Run as `python -m tests.training.hygiene_probe ORDER` in a fresh interpreter: what `import plksr_arch` (and the
registration and model building it leads to) does to basicsr, torch, torchvision and cv2. Prints one JSON object.

ORDER `basicsr-first`: only the torchvision alias, then basicsr and the libraries are imported and every object
behind every module-level name of every loaded `basicsr.*` module (and of the library modules in `LIBRARIES`),
every attribute of basicsr's classes and every registry entry is kept; every `basicsr.*` module records attribute
writes from then on. Then plksr_arch is imported, its modules loaded, and a PLKSRModel with the perceptual loss
built, trained one step, saved and loaded again. The output lists what is no longer the same object (`changed`), the
module attributes written even for a moment (`written`), the registry names added (`added`) and the fingerprints
taken before (`fingerprints`). ORDER `plksr-first`: `import plksr_arch` comes first; the output has the fingerprints
after basicsr's import and the registries' names.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import tempfile
import types
from typing import Any

LIBRARIES = (
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.hub",
    "torch.distributed",
    "torchvision",
    "torchvision.models.vgg",
    "torchvision.transforms",
    "torchvision.transforms.functional",
    "torchvision.transforms._functional_tensor",
    "cv2",
)
REGISTRIES = ("ARCH_REGISTRY", "DATASET_REGISTRY", "MODEL_REGISTRY", "LOSS_REGISTRY", "METRIC_REGISTRY")


def modules() -> list[str]:
    return sorted(m for m in sys.modules if m == "basicsr" or m.startswith("basicsr.")) + list(LIBRARIES)


def objects() -> dict[str, Any]:
    """Every object to keep the same: module-level names, basicsr classes' attributes, registry entries."""
    from basicsr.utils import registry

    found: dict[str, Any] = {}
    for name in modules():
        for key, value in list(vars(sys.modules[name]).items()):
            found[f"{name}:{key}"] = value
            if name.startswith("basicsr") and isinstance(value, type) and value.__module__ == name:
                for attr, member in vars(value).items():
                    found[f"{name}:{key}.{attr}"] = member
    for name in REGISTRIES:
        held = getattr(registry, name)._obj_map
        found[f"{name}._obj_map"] = held
        found.update({f"{name}[{key}]": value for key, value in held.items()})
    return found


def fingerprint(value: Any) -> str:
    """What an object is, comparable across processes."""
    if isinstance(value, types.ModuleType):
        return f"module {value.__name__}"
    if isinstance(value, (str, int, float, bool, type(None))):
        return repr(value)
    qualname, module = getattr(value, "__qualname__", None), getattr(value, "__module__", None)
    if isinstance(qualname, str) and isinstance(module, str):
        return f"{module}.{qualname}"
    return f"instance of {type(value).__module__}.{type(value).__qualname__}"


def registered() -> dict[str, list[str]]:
    from basicsr.utils import registry

    return {name: sorted(getattr(registry, name)._obj_map) for name in REGISTRIES}


def record_writes(log: list[str]) -> None:
    """Make every loaded `basicsr.*` module log attribute writes and deletions into `log`."""

    class Recording(types.ModuleType):
        def __setattr__(self, key: str, value: Any) -> None:
            log.append(f"{self.__name__}.{key} set")
            super().__setattr__(key, value)

        def __delattr__(self, key: str) -> None:
            log.append(f"{self.__name__}.{key} deleted")
            super().__delattr__(key)

    for name in modules():
        if name.startswith("basicsr"):
            sys.modules[name].__class__ = Recording


def use_plksr(workdir: str) -> None:
    """Import our modules and build, train one step, save and reload a PLKSRModel with the perceptual loss."""
    import torch
    from basicsr.models import build_model
    from torchvision.models import vgg19

    import plksr_arch

    for module in pkgutil.walk_packages(plksr_arch.__path__, "plksr_arch."):  # every module of the package
        importlib.import_module(module.name)
    vgg = os.path.join(workdir, "vgg19.pth")
    torch.save({k: torch.zeros(1).expand(v.shape) for k, v in vgg19().state_dict().items()}, vgg)
    models, states = os.path.join(workdir, "models"), os.path.join(workdir, "training_states")
    os.makedirs(models)
    os.makedirs(states)
    network = {"type": "PLKSR", "dim": 8, "n_blocks": 1, "kernel_size": 5, "upscaling_factor": 2}
    perceptual = {"type": "PLKSRPerceptualLoss", "layer_weights": {"conv1_2": 1.0}, "vgg_weights": vgg}
    opt = {
        "name": "probe",
        "model_type": "PLKSRModel",
        "scale": 2,
        "num_gpu": 0,
        "is_train": True,
        "dist": False,
        "rank": 0,
        "network_g": network,
        "path": {"pretrain_network_g": None, "models": models, "training_states": states},
        "train": {
            "ema_decay": 0.9,
            "optim_g": {"type": "Adam", "lr": 1e-3},
            "scheduler": {"type": "MultiStepLR", "milestones": [10], "gamma": 0.5},
            "pixel_opt": {"type": "L1Loss"},
            "perceptual_opt": perceptual,
        },
    }
    model = build_model(opt)
    model.feed_data({"lq": torch.rand(1, 3, 8, 8), "gt": torch.rand(1, 3, 16, 16)})
    model.optimize_parameters(1)
    model.save(0, 1)
    opt = {**opt, "is_train": False, "path": {**opt["path"], "pretrain_network_g": os.path.join(models, "net_g_1.pth")}}
    build_model(opt)


def main(order: str) -> dict[str, Any]:
    if order == "plksr-first":
        for name in ("plksr_arch", "basicsr", *LIBRARIES):  # in this order
            importlib.import_module(name)
        return {"fingerprints": {k: fingerprint(v) for k, v in objects().items()}, "registered": registered()}
    import torchvision.transforms._functional_tensor as successor

    sys.modules["torchvision.transforms.functional_tensor"] = successor  # the alias alone, as BasicSR users do
    import basicsr  # noqa: F401

    for name in LIBRARIES:
        importlib.import_module(name)
    before, names = objects(), registered()
    del sys.modules["torchvision.transforms.functional_tensor"]  # plksr_arch brings its own alias
    written: list[str] = []
    record_writes(written)
    import plksr_arch  # noqa: F401

    with tempfile.TemporaryDirectory() as workdir:
        use_plksr(workdir)
    after = objects()
    return {
        "changed": sorted(key for key, value in before.items() if key in after and after[key] is not value),
        "lost": sorted(key for key in before if key not in after),
        "written": written,
        "added": {name: sorted(set(now) - set(names[name])) for name, now in registered().items()},
        "fingerprints": {k: fingerprint(v) for k, v in before.items()},
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
