"""Load, validate and complete BasicSR option files.

BasicSR reads options as unchecked dicts, so a typo is silently ignored. Here every key is checked: network, loss,
optimizer and scheduler arguments against the signature of the class they build (derived, never listed twice), the
rest against the schema below. Errors are `OptionsError("<file>: <key.path>: <problem>")`.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os.path as osp
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import yaml

from .errors import UserError
from .inference import check_tiling
from .runtime import AMP_DTYPES, resolve_num_gpu

logger = logging.getLogger("basicsr")

SCHEDULERS = ("MultiStepLR", "MultiStepRestartLR", "CosineAnnealingRestartLR")

# Keys BasicSR's paired/single image datasets and its dataloader read (basicsr/data/*.py, build_dataloader).
DATASET_KEYS = {
    "name",
    "type",
    "dataroot_gt",
    "dataroot_lq",
    "meta_info_file",
    "filename_tmpl",
    "io_backend",
    "gt_size",
    "use_hflip",
    "use_rot",
    "use_flip",
    "color",
    "mean",
    "std",
    "use_shuffle",
    "num_worker_per_gpu",
    "batch_size_per_gpu",
    "dataset_enlarge_ratio",
    "prefetch_mode",
    "pin_memory",
    "persistent_workers",
}
# Dataset types whose option keys are known; other registered types are passed through unchecked.
CHECKED_DATASETS = ("PairedImageDataset", "SingleImageDataset")

NoneType = type(None)


def _key(default: Any, types: type | tuple[type, ...], doc: str) -> Any:
    """A project option key: its default, the YAML types it accepts and a one-line doc."""
    return field(default=default, metadata={"types": types, "doc": doc})


@dataclass(frozen=True)
class ModelKeys:
    """Top-level keys PLKSRModel adds to BasicSR's option files."""

    use_amp: bool = _key(False, bool, "train under autocast, dtype by the runtime's AMP rule (off where it is fp32)")
    amp_dtype: str = _key("auto", str, "auto | fp16 | bf16: fp16 + grad scaler on CUDA; on a CPU bf16 if native")
    channels_last: bool = _key(False, bool, "NHWC activations and weights (what oneDNN and cuDNN want for bf16/fp16)")


@dataclass(frozen=True)
class TestKeys:
    """`val.*` keys PLKSRModel adds: test-time settings of validation during training and of `plksr test`."""

    use_amp: bool = _key(False, bool, "test under autocast (amp_dtype); the global skip, output and metrics stay fp32")
    self_ensemble: bool = _key(False, bool, "mean of the eight flips/rotations (x8), 5-8x slower")
    tile: int | None = _key(None, (int, NoneType), "LR tile size in pixels, to bound memory; null = whole images")
    tile_overlap: int = _key(16, int, "LR pixels shared by neighbouring tiles, feathered")
    pbar: bool | None = _key(None, (bool, NoneType), "progress bar per dataset (images/s); null = on when testing")
    reference: str | None = _key("auto", (str, NoneType), "key of the published results in reference_file; auto")
    reference_file: str | None = _key(
        "paper", (str, NoneType), "YAML file of published results; paper = the PLKSR paper's tables (shipped)"
    )


Keys = TypeVar("Keys", ModelKeys, TestKeys)


def read_keys(kind: type[Keys], section: Mapping[str, Any] | None) -> Keys:
    """The `kind` keys of an option mapping (the top level, or `val`), defaults where absent."""
    section = section or {}
    return kind(**{f.name: section[f.name] for f in fields(kind) if f.name in section})


def _schema(kind: type) -> dict[str, Any]:
    return {f.name: f.metadata["types"] for f in fields(kind)}


SCHEMA: dict[str, Any] = {
    "name": str,
    "model_type": str,
    "scale": int,
    "num_gpu": (int, str),
    "manual_seed": int,
    **_schema(ModelKeys),
    "find_unused_parameters": bool,
    "datasets": dict,
    "network_g": dict,
    "path": {
        "pretrain_network_g": (str, type(None)),
        "strict_load_g": bool,
        "param_key_g": (str, type(None)),
        "resume_state": (str, type(None)),
    },
    "train": {
        "ema_decay": (int, float),
        "optim_g": dict,
        "scheduler": dict,
        "total_iter": (int, float),
        "warmup_iter": (int, float),
        "pixel_opt": dict,
        "perceptual_opt": dict,
    },
    "val": {
        "val_freq": (int, float),
        "save_img": bool,
        "suffix": (str, type(None)),
        **_schema(TestKeys),
        "metrics": dict,
    },
    "logger": {
        "print_freq": int,
        "save_checkpoint_freq": (int, float),
        "use_tb_logger": bool,
        "wandb": {"project": (str, type(None)), "resume_id": (str, type(None))},
    },
    "dist_params": {"backend": str, "port": int},
}
REQUIRED = ("name", "model_type", "network_g", "datasets")


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `2e-4` as a float (YAML 1.1 needs `2.0e-4`; BasicSR files use `!!float`)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


class OptionsError(UserError):
    """A user error in an option file; the message names the file and the key path."""


def _fail(source: str, key: str, problem: str) -> OptionsError:
    return OptionsError(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


def _hint(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(sorted(known))})"


def _unknown(source: str, key: str, known: Iterable[str]) -> OptionsError:
    return _fail(source, key, f"unknown key{_hint(key.rsplit('.', 1)[-1], known)}")


def _type_name(kind: Any) -> str:
    return " or ".join("null" if k is type(None) else k.__name__ for k in _as_tuple(kind))


def _check_schema(source: str, prefix: str, value: dict, schema: dict) -> None:
    for key, sub in value.items():
        path = f"{prefix}{key}"
        if key not in schema:
            raise _unknown(source, path, schema)
        expected = schema[key]
        if isinstance(expected, dict):
            if not isinstance(sub, dict):
                raise _fail(source, path, f"expected a mapping, got {sub!r}")
            _check_schema(source, f"{path}.", sub, expected)
        elif not isinstance(sub, expected) or (isinstance(sub, bool) and bool not in _as_tuple(expected)):
            raise _fail(source, path, f"expected {_type_name(expected)}, got {sub!r}")


def _as_tuple(kind: Any) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _check_call(source: str, key: str, func: Callable, kwargs: dict, skip: int = 0) -> None:
    """Check `kwargs` against `func`'s signature (skipping its first `skip` positional parameters)."""
    params = list(inspect.signature(func).parameters.values())[skip:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for name in kwargs:
        if name not in names:
            raise _unknown(source, f"{key}.{name}", names)
    try:
        inspect.signature(func).bind_partial(*([None] * skip), **kwargs)
    except TypeError as err:
        raise _fail(source, key, str(err)) from None
    missing = [
        p.name for p in params if p.default is p.empty and p.kind is not p.VAR_POSITIONAL and p.name not in kwargs
    ]
    if missing:
        raise _fail(source, key, f"missing required argument(s): {', '.join(missing)}")


def _registered(source: str, key: str, registry: Any, name: Any) -> Any:
    if name not in registry:
        raise _fail(source, key, f"{name!r} is not registered in BasicSR{_hint(str(name), list(registry.keys()))}")
    return registry.get(name)


def _check_datasets(source: str, datasets: dict, is_train: bool, check_paths: bool) -> None:
    from basicsr.utils.registry import DATASET_REGISTRY

    if not datasets:
        raise _fail(source, "datasets", "no dataset given")
    phases = ("train", "val") if is_train else ("test", "val")
    for phase, ds in datasets.items():
        key = f"datasets.{phase}"
        if phase.split("_")[0] not in phases:
            raise _fail(source, key, f"unknown phase, expected one of {', '.join(p + '[_N]' for p in phases)}")
        if not isinstance(ds, dict):
            raise _fail(source, key, f"expected a mapping, got {ds!r}")
        for required in ("name", "type"):
            if required not in ds:
                raise _fail(source, f"{key}.{required}", "missing")
        _registered(source, f"{key}.type", DATASET_REGISTRY, ds["type"])
        if ds["type"] in CHECKED_DATASETS:
            for name in ds:
                if name not in DATASET_KEYS:
                    raise _unknown(source, f"{key}.{name}", DATASET_KEYS)
        if check_paths:
            for root in ("dataroot_gt", "dataroot_lq", "meta_info_file"):
                path = ds.get(root)
                if path is not None and not osp.exists(osp.expanduser(path)):
                    raise _fail(source, f"{key}.{root}", f"'{path}' does not exist (see README, 'Data layout')")
    if is_train and "train" not in datasets:
        raise _fail(source, "datasets.train", "missing: training needs a train dataset")


def validate(opt: dict, source: str, *, is_train: bool, check_paths: bool = True) -> None:
    """Raise OptionsError naming `source` and the key path of the first problem in `opt`."""
    import torch.optim
    from basicsr.models import lr_scheduler
    from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

    if not isinstance(opt, dict):
        raise _fail(source, "", "expected a YAML mapping at the top level")
    for key in REQUIRED:
        if key not in opt:
            raise _fail(source, key, "missing")
    for key in ("train", "logger", "path") if is_train else ("path", "val"):
        if key not in opt:
            raise _fail(source, key, f"missing: {'training' if is_train else 'testing'} needs it")
    _check_schema(source, "", opt, SCHEMA)

    _registered(source, "model_type", MODEL_REGISTRY, opt["model_type"])
    net = dict(opt["network_g"])
    arch = _registered(source, "network_g.type", ARCH_REGISTRY, net.pop("type", None))
    _check_call(source, "network_g", arch.__init__, net, skip=1)
    factor = net.get("upscaling_factor")
    if factor is not None and "scale" in opt and factor != opt["scale"]:
        raise _fail(source, "network_g.upscaling_factor", f"{factor} differs from scale: {opt['scale']}")
    if read_keys(ModelKeys, opt).amp_dtype not in AMP_DTYPES:
        raise _fail(source, "amp_dtype", f"{opt['amp_dtype']!r} is not one of {', '.join(AMP_DTYPES)}")
    num_gpu = opt.get("num_gpu", 1)
    if num_gpu != "auto" and not (isinstance(num_gpu, int) and num_gpu >= 0):
        raise _fail(source, "num_gpu", f"{num_gpu!r} is not an int >= 0 or 'auto'")
    _check_datasets(source, opt["datasets"], is_train, check_paths)

    train = opt.get("train", {})
    for loss_key in ("pixel_opt", "perceptual_opt"):
        if loss_key in train:
            loss = dict(train[loss_key])
            cls = _registered(source, f"train.{loss_key}.type", LOSS_REGISTRY, loss.pop("type", None))
            _check_call(source, f"train.{loss_key}", cls.__init__, loss, skip=1)
    if "optim_g" in train:
        optim = dict(train["optim_g"])
        name = optim.pop("type", None)
        if not isinstance(name, str) or not isinstance(getattr(torch.optim, name, None), type):
            raise _fail(source, "train.optim_g.type", f"{name!r} is not an optimizer in torch.optim")
        _check_call(source, "train.optim_g", getattr(torch.optim, name).__init__, optim, skip=2)
    if "scheduler" in train:
        sched = dict(train["scheduler"])
        name = sched.pop("type", None)
        if name not in SCHEDULERS:
            raise _fail(source, "train.scheduler.type", f"{name!r} is not one of {', '.join(SCHEDULERS)}")
        cls = lr_scheduler.MultiStepRestartLR if "MultiStep" in name else lr_scheduler.CosineAnnealingRestartLR
        _check_call(source, "train.scheduler", cls.__init__, sched, skip=2)
    if is_train and "total_iter" not in train:
        raise _fail(source, "train.total_iter", "missing")

    for name, metric in opt.get("val", {}).get("metrics", {}).items():
        key = f"val.metrics.{name}"
        if not isinstance(metric, dict):
            raise _fail(source, key, f"expected a mapping, got {metric!r}")
        _registered(source, f"{key}.type", METRIC_REGISTRY, metric.get("type"))
    if is_train and "val" in opt and "val_freq" not in opt["val"]:
        raise _fail(source, "val.val_freq", "missing")
    test_keys = read_keys(TestKeys, opt.get("val"))
    try:
        check_tiling(test_keys.tile, test_keys.tile_overlap)
    except ValueError as err:
        raise _fail(source, "val", str(err)) from None
    ref_file = test_keys.reference_file
    if check_paths and ref_file not in (None, "paper") and not osp.isfile(osp.expanduser(ref_file)):
        raise _fail(source, "val.reference_file", f"'{ref_file}' does not exist")


def read_yaml(path: str) -> dict:
    """Parse an option file; raise OptionsError naming the file (and line) on failure."""
    if not osp.isfile(path):
        raise OptionsError(f"{path}: no such option file")
    try:
        with open(path, encoding="utf-8") as f:
            opt = yaml.load(f, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise OptionsError(f"{path}: invalid YAML{where}: {getattr(err, 'problem', err)}") from None
    if not isinstance(opt, dict):
        raise OptionsError(f"{path}: expected a YAML mapping at the top level")
    return opt


def apply_overrides(opt: dict, overrides: Iterable[str], source: str) -> None:
    """Apply `key:sub:key=value` overrides (values parsed as YAML); the result is validated afterwards."""
    for entry in overrides:
        if "=" not in entry:
            raise OptionsError(f"{source}: --force_yml {entry!r}: expected KEY:SUBKEY=VALUE")
        keys, value = (s.strip() for s in entry.split("=", 1))
        *parents, leaf = keys.split(":")
        node = opt
        for i, key in enumerate(parents):
            if not isinstance(node.get(key), dict):
                raise OptionsError(f"{source}: --force_yml {entry!r}: {'.'.join(parents[: i + 1])} is not a mapping")
            node = node[key]
        node[leaf] = yaml.load(value, Loader=_Loader)  # noqa: S506


def load_options(
    path: str,
    *,
    is_train: bool,
    root: str = ".",
    overrides: Iterable[str] = (),
    launcher: str = "none",
    auto_resume: bool = False,
    debug: bool = False,
    check_paths: bool = True,
) -> dict:
    """Read, override, validate and complete an option file, as BasicSR's `parse_options` does.

    Differences from BasicSR: keys are validated, `--force_yml` parses values as YAML instead of `exec`, the
    experiment/results root is `root` (default: the working directory), CUDA is optional, and nothing else happens:
    the pipelines start the process group and seed (`runtime.start_process`).
    """
    opt = read_yaml(path)
    apply_overrides(opt, overrides, path)
    validate(opt, path, is_train=is_train, check_paths=check_paths)

    opt["is_train"] = is_train
    opt["auto_resume"] = auto_resume
    opt["launcher"] = launcher
    opt["dist"] = launcher != "none"
    resolve_num_gpu(opt)
    if opt.get("manual_seed") is None:
        opt["manual_seed"] = random.randint(1, 10000)

    if debug and not opt["name"].startswith("debug"):
        opt["name"] = "debug_" + opt["name"]
    for phase, ds in opt["datasets"].items():
        ds["phase"] = phase.split("_")[0]
        if "scale" in opt:
            ds["scale"] = opt["scale"]
        for key in ("dataroot_gt", "dataroot_lq"):
            if ds.get(key) is not None:
                ds[key] = osp.expanduser(ds[key])

    paths = opt.setdefault("path", {})
    for key, value in list(paths.items()):
        if value is not None and ("resume_state" in key or "pretrain_network" in key):
            paths[key] = osp.expanduser(value)
    root = osp.abspath(root)
    opt["root_path"] = root
    if is_train:
        exp = osp.join(root, "experiments", opt["name"])
        paths.update(
            experiments_root=exp,
            models=osp.join(exp, "models"),
            training_states=osp.join(exp, "training_states"),
            log=exp,
            visualization=osp.join(exp, "visualization"),
        )
        if "debug" in opt["name"]:
            if "val" in opt:
                opt["val"]["val_freq"] = 8
            opt["logger"]["print_freq"] = 1
            opt["logger"]["save_checkpoint_freq"] = 8
    else:
        results = osp.join(root, "results", opt["name"])
        paths.update(results_root=results, log=results, visualization=osp.join(results, "visualization"))
    return opt
