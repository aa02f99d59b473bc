"""Load, validate and complete BasicSR option files.

BasicSR reads options as unchecked dicts, so a typo is silently ignored. Here every key is checked once, against the
declarations of the classes the file names: network, loss, optimizer and scheduler arguments against the signature of
the class they build (derived, never listed twice); the rest against the model class `model_type` names, which is
SRModel's keys (`basicsr_keys.SCHEMA`) plus what each class in its MRO declares: its `option_keys` (`OptionKeys`
groups: ours, beside their classes; a user's model can declare its keys the same way) or, for BasicSR's classes,
`basicsr_keys.model_keys()`. Datasets likewise, per dataset class. Each group's own rules are its `check`.
Errors are `OptionsError("<file>: <key.path>: <problem>")`, one line.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os.path as osp
import random
import re
from collections.abc import Callable, Iterable
from typing import Any

import yaml

from plksr_arch.runtime.device import check_num_gpu, resolve_num_gpu
from plksr_arch.training import basicsr_keys
from plksr_arch.training.basicsr_keys import DATASET_KEYS, GAN_SCHEMA, lookup, missing_vgg_weights
from plksr_arch.training.keys import OptionKeys, OptionsError, optimizer_class, type_name
from plksr_arch.training.keys import fail as _fail

logger = logging.getLogger("basicsr")

SCHEDULERS = ("MultiStepLR", "MultiStepRestartLR", "CosineAnnealingRestartLR")
# BasicSR model families `plksr train` does not drive (video and face pipelines need their own datasets/loops).
UNSUPPORTED_MODELS = ("VideoBaseModel", "HiFaceGANModel", "StyleGAN2Model")
REQUIRED = ("name", "model_type", "network_g", "datasets")


def _merge(into: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, dict) else value


def _as_schema(part: Any) -> dict[str, Any]:
    """A part as a nested schema dict: an `OptionKeys` group under its section, a schema dict as it is."""
    if isinstance(part, dict):
        return part
    return part.schema() if not part.section else {part.section: part.schema()}


def model_parts(model: type) -> list[Any]:
    """Every part (an `OptionKeys` group, or a nested schema dict of BasicSR's keys) `model` adds to SRModel's keys:
    its own and its bases' `option_keys`, and for BasicSR's classes `basicsr_keys.model_keys()`."""
    basicsr = basicsr_keys.model_keys()
    parts: list[Any] = []
    for cls in reversed(model.__mro__):
        parts.extend(basicsr.get(basicsr_keys.qualname(cls), ()))
        parts.extend(p for p in cls.__dict__.get("option_keys", ()) if p not in parts)
    return parts


def model_schema(model: type) -> dict[str, Any]:
    """The option schema of a model class: SRModel's keys merged with `model_parts(model)`."""
    schema: dict[str, Any] = {}
    _merge(schema, basicsr_keys.SCHEMA)
    for part in model_parts(model):
        _merge(schema, _as_schema(part))
    return schema


def our_option_owners() -> dict[type, tuple[type[OptionKeys], ...]]:
    """Our registered classes that declare option keys, with their `OptionKeys` groups (for docs/options.md)."""
    from plksr_arch.training.registration import ours

    owners = {}
    for _, _, cls in ours():
        groups = tuple(p for p in cls.__dict__.get("option_keys", ()) if isinstance(p, type))
        if groups:
            owners[cls] = groups
    return owners


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `2e-4` as a float (YAML 1.1 needs `2.0e-4`; BasicSR files use `!!float`)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def _hint(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(sorted(known))})"


def _unknown(source: str, key: str, known: Iterable[str]) -> OptionsError:
    return _fail(source, key, f"unknown key{_hint(key.rsplit('.', 1)[-1], known)}")


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
            raise _fail(source, path, f"expected {type_name(_as_tuple(expected))}, got {sub!r}")


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
    from plksr_arch.training.names import CLASHES

    if name in CLASHES:  # one of our names, held by another package imported in this process
        raise _fail(source, key, CLASHES[name])
    cls = lookup(registry, name)
    if cls is None:
        raise _fail(source, key, f"{name!r} is not registered in BasicSR{_hint(str(name), list(registry.keys()))}")
    return cls


def _check_datasets(source: str, datasets: dict, is_train: bool, check_paths: bool) -> list[type[OptionKeys]]:
    """Each dataset's keys against its class (BasicSR's: `basicsr_keys.DATASET_KEYS`; ours add declared groups);
    returns the declared groups, whose rules `validate` runs."""
    from basicsr.utils.registry import DATASET_REGISTRY

    groups: list[type[OptionKeys]] = []
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
        cls = _registered(source, f"{key}.type", DATASET_REGISTRY, ds["type"])
        own = [g for c in cls.__mro__ for g in c.__dict__.get("option_keys", ())]
        declared = {name: kinds for group in own for name, kinds in group.schema().items()}
        _check_schema(source, f"{key}.", {k: v for k, v in ds.items() if k in declared}, declared)
        groups += [group for group in own if group not in groups]
        known = next((DATASET_KEYS[c.__name__] for c in cls.__mro__ if c.__name__ in DATASET_KEYS), None)
        if known is not None:
            allowed, required = known[0] | set(declared), known[1]
            for name in ds:
                if name not in allowed:
                    raise _unknown(source, f"{key}.{name}", allowed)
            for name in required:
                if name not in ds:
                    raise _fail(source, f"{key}.{name}", f"missing: {ds['type']} needs it")
        if check_paths:
            for root in ("dataroot_gt", "dataroot_lq", "meta_info_file", "meta_info"):
                path = ds.get(root)
                if path is not None and not osp.exists(osp.expanduser(path)):
                    raise _fail(
                        source, f"{key}.{root}", f"'{path}' does not exist (see docs/training.md, 'Data layout')"
                    )
    if is_train and "train" not in datasets:
        raise _fail(source, "datasets.train", "missing: training needs a train dataset")
    return groups


def _check_build(source: str, key: str, registry: Any, spec: Any, network: bool = False) -> None:
    """`spec` (`{type: ..., **kwargs}`) names a class registered in `registry` and fits its constructor; one of our
    networks (`network`) also checks its values."""
    if not isinstance(spec, dict):
        raise _fail(source, key, f"expected a mapping, got {spec!r}")
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    cls = _registered(source, f"{key}.type", registry, spec.get("type"))
    _check_call(source, key, cls.__init__, kwargs, skip=1)
    if network and cls.__module__.startswith("plksr_arch."):  # built on the meta device: free
        import torch

        try:
            with torch.device("meta"):
                cls(**kwargs)
        except ValueError as err:
            raise _fail(source, key, str(err)) from None


def _check_optimizer(source: str, key: str, spec: Any) -> None:
    if not isinstance(spec, dict):
        raise _fail(source, key, f"expected a mapping, got {spec!r}")
    optim = dict(spec)
    try:
        cls = optimizer_class(optim.pop("type", None))
    except ValueError as err:
        raise _fail(source, f"{key}.type", str(err)) from None
    _check_call(source, key, cls.__init__, optim, skip=2)


def validate(opt: dict, source: str, *, is_train: bool, check_paths: bool = True) -> None:
    """Raise OptionsError naming `source` and the key path of the first problem in `opt`."""
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
    if not is_train and not (isinstance(opt["path"], dict) and opt["path"].get("pretrain_network_g")):
        raise _fail(
            source,
            "path.pretrain_network_g",
            "missing: the weights to test (without them the scores are a random network's)",
        )
    model = _registered(source, "model_type", MODEL_REGISTRY, opt["model_type"])
    family = next((c.__name__ for c in model.__mro__ if c.__name__ in UNSUPPORTED_MODELS), None)
    if family is not None:
        raise _fail(
            source,
            "model_type",
            f"{opt['model_type']!r} is a BasicSR {family} (video/face), which plksr "
            "does not drive; use PLKSRModel, PLKSRRealESRNetModel, PLKSRRealESRGANModel or another image SR model",
        )
    parts = model_parts(model)
    _check_schema(source, "", opt, model_schema(model))

    for net_key in ("network_g", "network_d"):
        if net_key in opt or (net_key == "network_d" and GAN_SCHEMA in parts):
            _check_build(source, net_key, ARCH_REGISTRY, opt.get(net_key), network=True)
    factor = opt["network_g"].get("upscaling_factor")
    if factor is not None and "scale" in opt and factor != opt["scale"]:
        raise _fail(source, "network_g.upscaling_factor", f"{factor} differs from scale: {opt['scale']}")
    try:
        check_num_gpu(opt.get("num_gpu", 1))
    except ValueError as err:
        raise _fail(source, "num_gpu", str(err)) from None
    parts += _check_datasets(source, opt["datasets"], is_train, check_paths)
    train_ds, scale = opt["datasets"].get("train", {}), opt.get("scale", 1)
    gt_size = train_ds.get("gt_size")
    if is_train and gt_size is not None and (not isinstance(gt_size, int) or gt_size < 1 or gt_size % scale):
        raise _fail(
            source,
            "datasets.train.gt_size",
            f"{gt_size!r}: must be a multiple of scale {scale} (LQ patches are gt_size / scale pixels)",
        )

    train = opt.get("train", {})
    for loss_key in ("pixel_opt", "perceptual_opt", "gan_opt", "ldl_opt"):
        if loss_key in train:
            _check_build(source, f"train.{loss_key}", LOSS_REGISTRY, train[loss_key])
    problem = "perceptual_opt" in train and check_paths and missing_vgg_weights(train["perceptual_opt"])
    if problem:
        raise _fail(source, "train.perceptual_opt.vgg_weights", problem)
    if is_train and GAN_SCHEMA in parts:
        for key in ("optim_d", "gan_opt"):
            if key not in train:
                raise _fail(source, f"train.{key}", "missing: a GAN model needs it")
    if "ldl_opt" in train and not train.get("ema_decay", 0) > 0:
        raise _fail(source, "train.ldl_opt", "needs train.ema_decay > 0 (the LDL loss compares with the EMA output)")
    for optim_key in ("optim_g", "optim_d"):
        if optim_key in train:
            _check_optimizer(source, f"train.{optim_key}", train[optim_key])
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
    for part in parts:  # each declared group's own rules, in the model's order
        if not isinstance(part, dict):
            part.check(opt, source, is_train=is_train, check_paths=check_paths)


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


def yaml_value(text: str) -> Any:
    """A value given on the command line, read as in option files (`2e-4` a float, `[1, 2]` a list); raises
    yaml.YAMLError."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


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
        node[leaf] = yaml_value(value)


_adopted: set[tuple[str, str]] = set()  # (their name, ours) already logged by this process


def adopt_foreign_names(opt: dict, source: str) -> None:
    """Rewrite the type names of BasicSR, Real-ESRGAN and the official PLKSR option files that our commands read as
    our classes (`names.FOREIGN_NAMES`: `model_type`, `datasets.*.type`, `train.*_opt.type`), logging each
    mapping once per process."""
    from plksr_arch.training.names import FOREIGN_NAMES

    places: list[tuple[str, dict, str, str]] = [("model", opt, "model_type", "model_type")]
    for phase, dataset in (opt.get("datasets") or {}).items():
        places.append(("dataset", dataset, "type", f"datasets.{phase}.type"))
    for key, loss in (opt.get("train") or {}).items():
        if key.endswith("_opt"):
            places.append(("loss", loss, "type", f"train.{key}.type"))
    for kind, node, key, where in places:
        theirs = node.get(key) if isinstance(node, dict) else None
        ours = FOREIGN_NAMES[kind].get(theirs) if isinstance(theirs, str) else None
        if ours is None:
            continue
        node[key] = ours
        if (theirs, ours) not in _adopted:
            _adopted.add((theirs, ours))
            logging.getLogger("plksr").info(f"{source}: {where}: {theirs} is read as plksr-arch's {ours}")


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

    Differences from BasicSR: other projects' type names are read as ours (`adopt_foreign_names`), keys are
    validated, `--force_yml` parses values as YAML instead of `exec`, the
    experiment/results root is `root` (default: the working directory), CUDA is optional, and nothing else happens:
    the pipelines start the process group and seed (`training.process.start_process`).
    """
    from plksr_arch.training.names import check

    check()
    opt = read_yaml(path)
    apply_overrides(opt, overrides, path)
    adopt_foreign_names(opt, path)
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
