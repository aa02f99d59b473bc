"""The one global change plksr-arch makes, and the hook that registers our classes when basicsr is imported.

The global change: torchvision >= 0.17 removed `torchvision.transforms.functional_tensor`, which basicsr's
degradations import when basicsr is imported, so `install()` appends an import finder (last on `sys.meta_path`: a
torchvision that still has the module wins) that makes that name a new module holding the same objects as its private
successor, `torchvision.transforms._functional_tensor` (whose own spec and attributes stay untouched).

Registration: `import plksr_arch` stays cheap (the `plksr` command answers `--help` without torch), so it does not
import basicsr; a second finder runs `training.registration.register_safely` once, right after `import basicsr` has
run, whoever imports it (at once if basicsr is already imported). Registering only adds names (see
`training.registration`) and never breaks the host's `import basicsr`.

What else BasicSR 1.4.2 needs on the current stack is in `training.basicsr_fixes`, called by our own classes only.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
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


def _register() -> None:
    from plksr_arch.training.registration import register_safely

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
