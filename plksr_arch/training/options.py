"""Load, validate and complete BasicSR option files.

BasicSR reads options as unchecked dicts, so a typo is silently ignored. Here every key is checked: network, loss,
optimizer and scheduler arguments against the signature of the class they build (derived, never listed twice), the
rest against the schema of the model class `model_type` names: SRModel's keys (`SCHEMA`) plus what each class in its
MRO adds, from its `option_keys` attribute (ours; a user's model can declare its keys the same way) or, for BasicSR's
classes, from `_basicsr_model_keys` (SRGANModel: a discriminator; RealESRNet/RealESRGAN: the degradation keys).
Dataset keys are checked per dataset class. Errors are `OptionsError("<file>: <key.path>: <problem>")`.
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

from plksr_arch.errors import UserError
from plksr_arch.inference.tiles import check_tiling
from plksr_arch.runtime.device import AMP_DTYPES, resolve_num_gpu

logger = logging.getLogger("basicsr")

SCHEDULERS = ("MultiStepLR", "MultiStepRestartLR", "CosineAnnealingRestartLR")

# Keys BasicSR's dataloader reads for every dataset (basicsr/data/__init__.py: build_dataloader).
LOADER_KEYS = {
    "name",
    "type",
    "use_shuffle",
    "num_worker_per_gpu",
    "batch_size_per_gpu",
    "dataset_enlarge_ratio",
    "prefetch_mode",
    "num_prefetch_queue",
    "pin_memory",
    "persistent_workers",
}
PAIRED_KEYS = {"dataroot_gt", "dataroot_lq", "meta_info_file", "filename_tmpl", "io_backend", "gt_size", "use_hflip"}
PAIRED_KEYS |= {"use_rot", "use_flip", "color", "mean", "std"}
# RealESRGANDataset's blur/sinc kernel draws for the two degradation passes (all required by BasicSR).
KERNEL_KEYS = (
    "blur_kernel_size",
    "kernel_list",
    "kernel_prob",
    "blur_sigma",
    "betag_range",
    "betap_range",
    "sinc_prob",
    "blur_kernel_size2",
    "kernel_list2",
    "kernel_prob2",
    "blur_sigma2",
    "betag_range2",
    "betap_range2",
    "sinc_prob2",
    "final_sinc_prob",
)
# Option keys of the dataset classes whose keys are known (basicsr/data/*.py), by class name: (allowed, required).
DATASET_KEYS: dict[str, tuple[set[str], tuple[str, ...]]] = {
    "PairedImageDataset": (LOADER_KEYS | PAIRED_KEYS, ("dataroot_gt", "dataroot_lq", "io_backend")),
    "SingleImageDataset": (LOADER_KEYS | PAIRED_KEYS, ("dataroot_lq", "io_backend")),
    "RealESRGANDataset": (
        LOADER_KEYS | {"dataroot_gt", "meta_info", "io_backend", "gt_size", "use_hflip", "use_rot", *KERNEL_KEYS},
        ("dataroot_gt", "io_backend", "use_hflip", "use_rot", *KERNEL_KEYS),
    ),
    "RealESRGANPairedDataset": (
        LOADER_KEYS
        | {"dataroot_gt", "dataroot_lq", "meta_info", "filename_tmpl", "io_backend", "gt_size"}
        | {"use_hflip", "use_rot", "mean", "std"},
        ("dataroot_gt", "dataroot_lq", "io_backend"),
    ),
}
# BasicSR's RealESRGANDataset pads or crops every GT image to this size (ours: `crop_pad_size`, at most this).
REALESRGAN_CROP = 400
# BasicSR model families `plksr train` does not drive (video and face pipelines need their own datasets/loops).
UNSUPPORTED_MODELS = ("VideoBaseModel", "HiFaceGANModel", "StyleGAN2Model")

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


@dataclass(frozen=True)
class TrainKeys:
    """`train.*` keys PLKSRModel adds."""

    nonfinite_limit: int = _key(
        10, int, "steps in a row with a non-finite loss/gradient (each skipped) that stop a run"
    )


def _needed(types: type | tuple[type, ...], doc: str) -> Any:
    """A key without a default that the on-the-fly degradation needs (BasicSR reads it with `opt[key]`)."""
    return field(default=None, metadata={"types": types, "doc": doc, "needed": True})


@dataclass(frozen=True)
class DegradationKeys:
    """Top-level keys of Real-ESRGAN's second-order degradation (blur, resize, noise, JPEG, twice, then a sinc
    filter), synthesized on the training device from the kernels RealESRGANDataset draws. The values of Real-ESRGAN's
    x4plus recipe are `plksr_arch/resources/realesrgan_x4plus.yml`."""

    high_order_degradation: bool = _key(True, bool, "synthesize LQ on the fly; false: a paired train dataset")
    gt_size: int | None = _needed(int, "GT patch size cropped after the degradation (x4plus: 256)")
    queue_size: int = _key(180, int, "training-pair pool mixing degradations across batches; 0 = off")
    resize_prob: list | None = _needed(list, "first pass: probabilities of [up, down, keep]")
    resize_range: list | None = _needed(list, "first pass: [min, max] resize factor")
    gaussian_noise_prob: float | None = _needed((int, float), "first pass: Gaussian (else Poisson) noise probability")
    noise_range: list | None = _needed(list, "first pass: Gaussian sigma range (of 255)")
    poisson_scale_range: list | None = _needed(list, "first pass: Poisson scale range")
    gray_noise_prob: float | None = _needed((int, float), "first pass: probability of grey noise")
    jpeg_range: list | None = _needed(list, "first pass: JPEG quality range")
    second_blur_prob: float | None = _needed((int, float), "second pass: blur probability")
    resize_prob2: list | None = _needed(list, "second pass: probabilities of [up, down, keep]")
    resize_range2: list | None = _needed(list, "second pass: [min, max] resize factor")
    gaussian_noise_prob2: float | None = _needed((int, float), "second pass: Gaussian (else Poisson) noise probability")
    noise_range2: list | None = _needed(list, "second pass: Gaussian sigma range (of 255)")
    poisson_scale_range2: list | None = _needed(list, "second pass: Poisson scale range")
    gray_noise_prob2: float | None = _needed((int, float), "second pass: probability of grey noise")
    jpeg_range2: list | None = _needed(list, "second pass: JPEG quality range")


@dataclass(frozen=True)
class ESRNetKeys:
    """PLKSRRealESRNetModel's target key."""

    gt_usm: bool = _key(True, bool, "train on unsharp-masked GT (Real-ESRGAN x4plus: true)")


@dataclass(frozen=True)
class GANTargetKeys:
    """PLKSRRealESRGANModel's target keys: which losses see the unsharp-masked GT."""

    l1_gt_usm: bool = _key(True, bool, "pixel loss against unsharp-masked GT (x4plus: true)")
    percep_gt_usm: bool = _key(True, bool, "perceptual loss against unsharp-masked GT (x4plus: true)")
    gan_gt_usm: bool = _key(False, bool, "discriminator's real images unsharp-masked (x4plus: false)")


Keys = TypeVar("Keys", ModelKeys, TestKeys, TrainKeys, DegradationKeys, ESRNetKeys, GANTargetKeys)


def read_keys(kind: type[Keys], section: Mapping[str, Any] | None) -> Keys:
    """The `kind` keys of an option mapping (the top level, `val` or `train`), defaults where absent."""
    section = section or {}
    return kind(**{f.name: section[f.name] for f in fields(kind) if f.name in section})


def _schema(kind: type) -> dict[str, Any]:
    return {f.name: f.metadata["types"] for f in fields(kind)}


# What BasicSR's SRModel (and every model built on it) reads; models add their parts (`model_schema`).
SCHEMA: dict[str, Any] = {
    "name": str,
    "model_type": str,
    "scale": int,
    "num_gpu": (int, str),
    "manual_seed": int,
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
    "val": {"val_freq": (int, float), "save_img": bool, "suffix": (str, type(None)), "pbar": bool, "metrics": dict},
    "logger": {
        "print_freq": int,
        "save_checkpoint_freq": (int, float),
        "use_tb_logger": bool,
        "wandb": {"project": (str, type(None)), "resume_id": (str, type(None))},
    },
    "dist_params": {"backend": str, "port": int},
}
# What SRGANModel adds: a discriminator, its optimizer and the adversarial loss.
GAN_SCHEMA: dict[str, Any] = {
    "network_d": dict,
    "path": {"pretrain_network_d": (str, type(None)), "param_key_d": (str, type(None)), "strict_load_d": bool},
    "train": {"optim_d": dict, "gan_opt": dict, "net_d_iters": int, "net_d_init_iters": int},
}
# The parts PLKSRModel adds (its class attribute `option_keys`; options.py does not import the models).
PLKSR_MODEL_KEYS: tuple[Any, ...] = (ModelKeys, {"val": _schema(TestKeys), "train": _schema(TrainKeys)})
LDL_SCHEMA: dict[str, Any] = {"train": {"ldl_opt": dict}}
REAL_ESRNET_KEYS: tuple[Any, ...] = (DegradationKeys, ESRNetKeys)
REAL_ESRGAN_KEYS: tuple[Any, ...] = (DegradationKeys, GANTargetKeys, LDL_SCHEMA)


def _basicsr_model_keys() -> dict[str, tuple[Any, ...]]:
    """The parts BasicSR's image models add to SRModel's keys (read from basicsr/models/*.py 1.4.2), by class."""
    from basicsr.models.realesrgan_model import RealESRGANModel
    from basicsr.models.realesrnet_model import RealESRNetModel
    from basicsr.models.srgan_model import SRGANModel

    return {
        _qualname(SRGANModel): (GAN_SCHEMA,),
        _qualname(RealESRNetModel): REAL_ESRNET_KEYS,
        _qualname(RealESRGANModel): REAL_ESRGAN_KEYS,
    }


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _merge(into: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, dict) else value


def model_parts(model: type) -> list[Any]:
    """Every part (a keys dataclass for top-level keys, or a nested schema dict) `model` adds to SRModel's keys: its
    own and its bases' `option_keys`, and for BasicSR's classes the table above."""
    basicsr = _basicsr_model_keys()
    parts: list[Any] = []
    for cls in reversed(model.__mro__):
        parts.extend(basicsr.get(_qualname(cls), ()))
        parts.extend(cls.__dict__.get("option_keys", ()))
    return parts


def model_schema(model: type) -> dict[str, Any]:
    """The option schema of a model class: SRModel's keys merged with `model_parts(model)`."""
    schema: dict[str, Any] = {}
    _merge(schema, SCHEMA)
    for part in model_parts(model):
        _merge(schema, part if isinstance(part, dict) else _schema(part))
    return schema


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


def lookup(registry: Any, name: Any) -> Any:
    """`registry.get(name)` without its print: BasicSR registers some classes with a suffix (`RealESRGANDataset` as
    `RealESRGANDataset_basicsr`) and resolves the plain name to them; None when neither is registered."""
    if not isinstance(name, str):
        return None
    return registry._obj_map.get(name) or registry._obj_map.get(f"{name}_basicsr")


def _registered(source: str, key: str, registry: Any, name: Any) -> Any:
    from plksr_arch.training.names import CLASHES

    if name in CLASHES:  # one of our names, held by another package imported in this process
        raise _fail(source, key, CLASHES[name])
    cls = lookup(registry, name)
    if cls is None:
        raise _fail(source, key, f"{name!r} is not registered in BasicSR{_hint(str(name), list(registry.keys()))}")
    return cls


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
        cls = _registered(source, f"{key}.type", DATASET_REGISTRY, ds["type"])
        known = next((DATASET_KEYS[c.__name__] for c in cls.__mro__ if c.__name__ in DATASET_KEYS), None)
        if known is not None:
            allowed, required = known[0] | set(cls.__dict__.get("option_keys", ())), known[1]
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
                    raise _fail(source, f"{key}.{root}", f"'{path}' does not exist (see README, 'Data layout')")
    if is_train and "train" not in datasets:
        raise _fail(source, "datasets.train", "missing: training needs a train dataset")


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
    import torch.optim

    if not isinstance(spec, dict):
        raise _fail(source, key, f"expected a mapping, got {spec!r}")
    optim = dict(spec)
    name = optim.pop("type", None)
    if not isinstance(name, str) or not isinstance(getattr(torch.optim, name, None), type):
        raise _fail(source, f"{key}.type", f"{name!r} is not an optimizer in torch.optim")
    _check_call(source, key, getattr(torch.optim, name).__init__, optim, skip=2)


def vgg_weights(perceptual_opt: Mapping[str, Any]) -> tuple[str, str]:
    """(path, download URL) of the ImageNet VGG weights `PerceptualLoss` loads: `vgg_weights` of the loss's options,
    by default BasicSR's `experiments/pretrained_models/<torchvision's file name>` (vgg19-dcbb9e9d.pth for VGG19)."""
    import torchvision.models

    vgg_type = str(perceptual_opt.get("vgg_type", "vgg19"))
    enum = getattr(torchvision.models, f"{vgg_type.upper()}_Weights", None)
    url = enum.IMAGENET1K_V1.url if enum is not None else f"torchvision's {vgg_type} ImageNet weights"
    default = osp.join("experiments", "pretrained_models", url.rsplit("/", 1)[-1])
    return osp.expanduser(str(perceptual_opt.get("vgg_weights") or default)), url


def _check_probabilities(source: str, opt: dict, key: str, length: int | None = None) -> None:
    value = opt[key]
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in values):
        raise _fail(source, key, f"{value!r}: probabilities must be numbers in [0, 1]")
    if length is not None and (len(values) != length or abs(sum(values) - 1) > 1e-6):
        raise _fail(source, key, f"{value!r}: expected {length} probabilities that sum to 1")


def _check_range(source: str, opt: dict, key: str) -> None:
    value = opt[key]
    if not (
        len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        and value[0] <= value[1]
    ):
        raise _fail(source, key, f"{value!r}: expected [min, max]")


def _check_degradation(source: str, opt: dict) -> None:
    """The on-the-fly degradation's keys, its dataset and its sizes (training only)."""
    from basicsr.data.realesrgan_dataset import RealESRGANDataset
    from basicsr.utils.registry import DATASET_REGISTRY

    train_ds = opt["datasets"].get("train", {})
    dataset = lookup(DATASET_REGISTRY, train_ds.get("type"))
    gives_kernels = isinstance(dataset, type) and issubclass(dataset, RealESRGANDataset)
    keys = read_keys(DegradationKeys, opt)
    if not keys.high_order_degradation:
        if gives_kernels:
            raise _fail(
                source,
                "datasets.train.type",
                "RealESRGANDataset gives GT only; with "
                "high_order_degradation: false train on pairs (e.g. RealESRGANPairedDataset)",
            )
        return
    if not gives_kernels:
        raise _fail(
            source,
            "datasets.train.type",
            f"{train_ds.get('type')!r} gives no degradation kernels: use "
            "RealESRGANDataset, or set high_order_degradation: false to train on pairs",
        )
    for f in fields(DegradationKeys):
        if f.metadata.get("needed") and f.name not in opt:
            raise _fail(source, f.name, "missing: the on-the-fly degradation needs it (see options/train/*Real*.yml)")
    for key in ("resize_prob", "resize_prob2"):
        _check_probabilities(source, opt, key, length=3)
    for key in (
        "gaussian_noise_prob",
        "gray_noise_prob",
        "second_blur_prob",
        "gaussian_noise_prob2",
        "gray_noise_prob2",
    ):
        _check_probabilities(source, opt, key)
    for f in fields(DegradationKeys):
        if f.name.replace("2", "").endswith("_range"):
            _check_range(source, opt, f.name)
    scale, gt_size = opt.get("scale", 4), opt["gt_size"]
    crop = train_ds.get("crop_pad_size", REALESRGAN_CROP)
    if not (isinstance(crop, int) and 0 < crop <= REALESRGAN_CROP):
        raise _fail(source, "datasets.train.crop_pad_size", f"{crop!r}: must be an int in 1..{REALESRGAN_CROP}")
    if crop % scale:
        raise _fail(
            source, "scale", f"{scale}: does not divide the GT patch size {crop} (datasets.train.crop_pad_size)"
        )
    if not 0 < gt_size <= crop or gt_size % scale:
        raise _fail(
            source,
            "gt_size",
            f"{gt_size}: must be a multiple of scale {scale} and at most the GT patch "
            f"size {crop} (datasets.train.crop_pad_size)",
        )
    queue, batch = keys.queue_size, train_ds.get("batch_size_per_gpu", 1)
    if queue < 0 or (queue and queue % batch):
        raise _fail(
            source, "queue_size", f"{queue}: must be 0 or a multiple of datasets.train.batch_size_per_gpu ({batch})"
        )


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
    if ModelKeys in parts and read_keys(ModelKeys, opt).amp_dtype not in AMP_DTYPES:
        raise _fail(source, "amp_dtype", f"{opt['amp_dtype']!r} is not one of {', '.join(AMP_DTYPES)}")
    num_gpu = opt.get("num_gpu", 1)
    if num_gpu != "auto" and not (isinstance(num_gpu, int) and num_gpu >= 0):
        raise _fail(source, "num_gpu", f"{num_gpu!r} is not an int >= 0 or 'auto'")
    _check_datasets(source, opt["datasets"], is_train, check_paths)
    train_ds, scale = opt["datasets"].get("train", {}), opt.get("scale", 1)
    gt_size = train_ds.get("gt_size")
    if is_train and gt_size is not None and (not isinstance(gt_size, int) or gt_size < 1 or gt_size % scale):
        raise _fail(
            source,
            "datasets.train.gt_size",
            f"{gt_size!r}: must be a multiple of scale {scale} (LQ patches are gt_size / scale pixels)",
        )
    if is_train and DegradationKeys in parts:
        _check_degradation(source, opt)

    train = opt.get("train", {})
    for loss_key in ("pixel_opt", "perceptual_opt", "gan_opt", "ldl_opt"):
        if loss_key in train:
            _check_build(source, f"train.{loss_key}", LOSS_REGISTRY, train[loss_key])
    if "perceptual_opt" in train and check_paths:
        path, url = vgg_weights(train["perceptual_opt"])
        if not osp.isfile(path):
            raise _fail(
                source,
                "train.perceptual_opt.vgg_weights",
                f"'{path}' does not exist: download {url} there, or name the file in train.perceptual_opt.vgg_weights",
            )
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
    if read_keys(TrainKeys, train).nonfinite_limit < 1:
        raise _fail(source, "train.nonfinite_limit", f"{train['nonfinite_limit']!r}: must be >= 1")

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
    the pipelines start the process group and seed (`runtime.start_process`).
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
