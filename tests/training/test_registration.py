"""`import plksr_arch` adds and never rewires: BasicSR, torch, torchvision and cv2 keep every object (checked in fresh
interpreters by `hygiene_probe`), our classes are registered under our names, a name another package holds stays
with it, and Real-ESRGAN imports beside us in either order."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from plksr_arch import PLKSR, PLKSRModel
from plksr_arch.training.registration import ours

from ..conftest import PLKSR as PLKSR_COMMAND
from ..conftest import REPO, make_pairs, run_python, train_options, write_yaml

OUR_NAMES = {registry: sorted(name for r, name, _ in ours() if r == registry) for registry, _, _ in ours()}


@functools.cache
def _probe(order: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.training.hygiene_probe", order],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_import_leaves_every_basicsr_torch_torchvision_and_cv2_object_in_place() -> None:
    """basicsr imported first (with the alias alone): importing plksr_arch, loading its modules and building,
    training, saving and reloading a PLKSRModel with the perceptual loss changes no object behind any module-level
    name, class attribute or registry entry, writes no basicsr module attribute even for a moment, and adds exactly
    our names to the registries."""
    result = _probe("basicsr-first")
    assert result["changed"] == [] and result["lost"] == []
    assert result["written"] == []
    assert {k: v for k, v in result["added"].items() if v} == OUR_NAMES
    assert len(result["fingerprints"]) > 5000  # the snapshot covers basicsr's modules, classes and registries


def test_import_before_basicsr_gives_basicsr_as_it_defines_itself() -> None:
    """plksr_arch imported first: what basicsr's import then holds is what it holds without us (compared by
    qualified names across the two interpreters), plus our registry names and the torchvision alias."""
    alone, ours_first = _probe("basicsr-first"), _probe("plksr-first")
    before, after = alone["fingerprints"], ours_first["fingerprints"]
    assert {k: after.get(k) for k in before} == before
    added = sorted(set(after) - set(before))
    expected = [f"{registry}[{name}]" for registry, names in OUR_NAMES.items() for name in names]
    assert added == sorted([*expected, "torchvision.transforms:functional_tensor"])


def test_basicsrs_load_network_is_basicsrs() -> None:
    """BasicSR's own `load_network` runs: an EMA-only file asked for 'params' is its KeyError, a mismatch its
    RuntimeError (ours would load the EMA weights, or raise a CheckpointError)."""
    from basicsr.models.base_model import BaseModel

    assert BaseModel.load_network.__module__ == "basicsr.models.base_model"
    assert PLKSRModel.load_network.__module__ == "plksr_arch.training.models.plksr_model"


def test_basicsrs_load_network_behaves_as_basicsrs(tmp_path: Path) -> None:
    from basicsr.models.base_model import BaseModel

    net = PLKSR(dim=8, n_blocks=1, kernel_size=5, upscaling_factor=2)
    torch.save({"params_ema": net.state_dict()}, tmp_path / "ema.pth")
    model = BaseModel.__new__(BaseModel)
    model.opt = {"dist": False, "num_gpu": 0}
    with pytest.raises(KeyError, match="params"):
        model.load_network(net, str(tmp_path / "ema.pth"), param_key="params")
    other = PLKSR(dim=8, n_blocks=1, kernel_size=5, upscaling_factor=4)
    with pytest.raises(RuntimeError, match="size mismatch"):
        model.load_network(other, str(tmp_path / "ema.pth"), param_key="params_ema")


@pytest.mark.parametrize("wrap", ["params", "params_ema", "module."])
def test_official_checkpoint_loads_strictly_through_basicsr(tmp_path, wrap: str) -> None:
    """A `{'params': ...}` file in the official layout loads with strict=True via BasicSR's own load_network."""
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


def test_import_registers_our_names_only() -> None:
    from basicsr.utils import registry

    for registry_name, name, cls in ours():
        assert getattr(registry, registry_name).get(name) is cls and cls.__name__ == name
    assert registry.ARCH_REGISTRY.get("PLKSR") is PLKSR and registry.MODEL_REGISTRY.get("PLKSRModel") is PLKSRModel
    for name in ("ESRModel", "RealESRNetModel", "RealESRGANModel"):
        assert name not in registry.MODEL_REGISTRY
    for name in ("RealESRGANDataset", "RealESRGANPairedDataset"):
        assert name not in registry.DATASET_REGISTRY


def test_reloading_the_modules_registers_the_reloaded_classes() -> None:
    """After reloads (as notebooks and autoreload do) the registries hold the new classes, not the stale ones; in a
    subprocess, since reloading replaces classes that other tests compare against."""
    code = (
        "import importlib, sys, plksr_arch, basicsr\n"
        "from basicsr.utils.registry import ARCH_REGISTRY as A, MODEL_REGISTRY as M\n"
        "old = A.get('PLKSR'), M.get('PLKSRModel')\n"
        "for _ in range(2):\n"
        "    arch = importlib.reload(sys.modules['plksr_arch.archs.plksr_arch'])\n"
        "    for name in ('plksr_arch.archs.plksr_spec', 'plksr_arch.archs.registry'):\n"
        "        importlib.reload(sys.modules[name])\n"
        "    model = importlib.reload(sys.modules['plksr_arch.training.models.plksr_model'])\n"
        "    importlib.reload(sys.modules['plksr_arch.training.registration']).register_all()\n"
        "    assert A.get('PLKSR') is arch.PLKSR and M.get('PLKSRModel') is model.PLKSRModel\n"
        "assert (A.get('PLKSR'), M.get('PLKSRModel')) != old\n"
        "print('ok')"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def _holders(prelude: str, entries: list[tuple[str, str]], cwd: Path) -> tuple[list[str], str]:
    """In a fresh interpreter, run `prelude`, then name the module of the class each (registry, name) entry holds;
    (modules, stderr)."""
    lines = [f"print(r.{registry}_REGISTRY.get({name!r}).__module__)" for registry, name in entries]
    proc = run_python(prelude + "import basicsr.utils.registry as r\n" + "\n".join(lines), cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split(), proc.stderr


def _package(root: Path, name: str, body: str) -> Path:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(textwrap.dedent(body))
    return root


# What the official PLKSR code registers (its own PLKSR network and ESRModel).
OFFICIAL = """
    import torchvision.transforms._functional_tensor as ft, sys
    sys.modules.setdefault("torchvision.transforms.functional_tensor", ft)
    from basicsr.models.sr_model import SRModel
    from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY
    from torch import nn

    @ARCH_REGISTRY.register()
    class PLKSR(nn.Module):
        pass

    @MODEL_REGISTRY.register()
    class ESRModel(SRModel):
        pass
"""


def test_a_name_held_by_another_package_stays_with_it(tmp_path: Path) -> None:
    """The official code's PLKSR imported first: it keeps the name, one warning line names both packages, the rest
    of ours are registered, and `plksr train` on an option file that needs PLKSR stops with that line (exit 2)."""
    _package(tmp_path, "official_plksr", OFFICIAL)
    entries = [("ARCH", "PLKSR"), ("ARCH", "RealPLKSR"), ("MODEL", "ESRModel"), ("MODEL", "PLKSRModel")]
    holders, stderr = _holders("import official_plksr, plksr_arch\n", entries, tmp_path)
    assert holders == ["official_plksr", "plksr_arch.archs.realplksr_arch", "official_plksr"] + [
        "plksr_arch.training.models.plksr_model"
    ]
    line = (
        "plksr-arch: BasicSR's ARCH_REGISTRY already holds 'PLKSR' from the package 'official_plksr' "
        "(official_plksr.PLKSR); it keeps it and plksr-arch's PLKSR is not registered: use the two packages in "
        "separate processes"
    )
    assert stderr.strip().splitlines() == [line]

    write_yaml(tmp_path / "train.yml", train_options(make_pairs(tmp_path / "data", 2, 2)))
    (tmp_path / "sitecustomize.py").write_text("import official_plksr\n")  # the other package, loaded first
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [str(PLKSR_COMMAND), "train", "-opt", "train.yml"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"plksr train: error: train.yml: network_g.type: {line}"


def test_a_failing_registration_never_breaks_the_hosts_import_of_basicsr() -> None:
    code = (
        "import plksr_arch, plksr_arch.training.registration as r, plksr_arch.training.names as n\n"
        "r.CLASSES = r.CLASSES + (('ARCH_REGISTRY', 'Missing', 'no_such_module'),)\n"
        "import basicsr\n"
        "from basicsr.utils.registry import ARCH_REGISTRY as A\n"
        "print('PLKSR' in A)\n"
        "try:\n    n.check()\nexcept RuntimeError as err:\n    print(type(err.__cause__).__name__)"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "ModuleNotFoundError"]  # all or nothing
    assert proc.stderr.strip().splitlines() == [
        "plksr-arch: nothing registered in BasicSR (ModuleNotFoundError: No module named 'no_such_module')"
    ]


# What realesrgan 0.3.0 registers, as it registers it (used when the package itself is not installed).
REAL_ESRGAN = """
    from basicsr.data.realesrgan_dataset import RealESRGANDataset as _D
    from basicsr.data.realesrgan_paired_dataset import RealESRGANPairedDataset as _P
    from basicsr.models.realesrgan_model import RealESRGANModel as _G
    from basicsr.models.realesrnet_model import RealESRNetModel as _N
    from basicsr.archs.srvgg_arch import SRVGGNetCompact as _S
    from basicsr.archs.discriminator_arch import UNetDiscriminatorSN as _U
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY

    for registry, base in ((DATASET_REGISTRY, _D), (DATASET_REGISTRY, _P), (MODEL_REGISTRY, _G), (MODEL_REGISTRY, _N),
                           (ARCH_REGISTRY, _S), (ARCH_REGISTRY, _U)):
        registry.register()(type(base.__name__.removesuffix("_basicsr"), (base,), {"__module__": __name__}))
"""


@pytest.mark.parametrize("order", ["ours first", "theirs first"])
@pytest.mark.parametrize("package", ["realesrgan", "stand-in"])
def test_real_esrgan_imports_beside_us_in_either_order(tmp_path: Path, package: str, order: str) -> None:
    """Real-ESRGAN registers RealESRNetModel, RealESRGANModel, RealESRGANDataset, RealESRGANPairedDataset,
    SRVGGNetCompact and UNetDiscriminatorSN (BasicSR leaves them free): with the alias in place, it imports before and
    after us, each package's classes under its own names. `realesrgan` is the package (0.3.0, installed by the test
    command); `stand-in` registers the same names the same way."""
    name = package
    if package == "realesrgan" and importlib.util.find_spec("realesrgan") is None:
        if os.environ.get("CI"):
            pytest.fail("realesrgan is not installed in CI (README's test command installs it)")
        pytest.skip("realesrgan is not installed (pip install --no-deps realesrgan==0.3.0)")
    if package == "stand-in":
        name = "realesrgan_standin"
        _package(tmp_path, name, REAL_ESRGAN)
    imports = f"import plksr_arch\nimport {name}\n" if order == "ours first" else f"import {name}\nimport plksr_arch\n"
    alias = "import sys, torchvision.transforms._functional_tensor as ft\n"
    alias += "sys.modules['torchvision.transforms.functional_tensor'] = ft\n"
    theirs = [("MODEL", "RealESRGANModel"), ("MODEL", "RealESRNetModel"), ("DATASET", "RealESRGANDataset")]
    theirs += [("DATASET", "RealESRGANPairedDataset"), ("ARCH", "SRVGGNetCompact")]
    ours = [("MODEL", "PLKSRRealESRGANModel"), ("DATASET", "PLKSRRealESRGANDataset"), ("ARCH", "PLKSR")]
    holders, stderr = _holders(alias + imports, theirs + ours, tmp_path)
    assert [h.split(".")[0] for h in holders] == [name] * len(theirs) + ["plksr_arch"] * len(ours)
    assert "plksr-arch" not in stderr  # no clash
