"""What BasicSR 1.4.2's own classes read from an option file, declared for validation (`training.options`) and for
docs/options.md: SRModel's keys and its pipelines' (`SCHEMA`), what its GAN and real-world models add, the keys of its
datasets, and the rules that involve them. We own none of these classes; our subclasses declare what they add
beside their code (`option_keys`), and reuse these declarations where they read BasicSR's keys.
"""

from __future__ import annotations

import os.path as osp
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from plksr_arch.training.keys import OptionKeys, fail, needed, option

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


def lookup(registry: Any, name: Any) -> Any:
    """`registry.get(name)` without its print: BasicSR registers some classes with a suffix (`RealESRGANDataset` as
    `RealESRGANDataset_basicsr`) and resolves the plain name to them; None when neither is registered."""
    if not isinstance(name, str):
        return None
    return registry._obj_map.get(name) or registry._obj_map.get(f"{name}_basicsr")


@dataclass(frozen=True)
class DegradationKeys(OptionKeys):
    """Top-level keys of Real-ESRGAN's second-order degradation (blur, resize, noise, JPEG, twice, then a sinc
    filter), synthesized on the training device from the kernels RealESRGANDataset draws. The values of Real-ESRGAN's
    x4plus recipe are `plksr_arch/resources/realesrgan_x4plus.yml`."""

    high_order_degradation: bool = option(True, "synthesize LQ on the fly; false: a paired train dataset")
    gt_size: int = needed("GT patch size cropped after the degradation (x4plus: 256)")
    queue_size: int = option(180, "training-pair pool mixing degradations across batches; 0 = off")
    resize_prob: list = needed("first pass: probabilities of [up, down, keep]")
    resize_range: list = needed("first pass: [min, max] resize factor")
    gaussian_noise_prob: float = needed("first pass: Gaussian (else Poisson) noise probability")
    noise_range: list = needed("first pass: Gaussian sigma range (of 255)")
    poisson_scale_range: list = needed("first pass: Poisson scale range")
    gray_noise_prob: float = needed("first pass: probability of grey noise")
    jpeg_range: list = needed("first pass: JPEG quality range")
    second_blur_prob: float = needed("second pass: blur probability")
    resize_prob2: list = needed("second pass: probabilities of [up, down, keep]")
    resize_range2: list = needed("second pass: [min, max] resize factor")
    gaussian_noise_prob2: float = needed("second pass: Gaussian (else Poisson) noise probability")
    noise_range2: list = needed("second pass: Gaussian sigma range (of 255)")
    poisson_scale_range2: list = needed("second pass: Poisson scale range")
    gray_noise_prob2: float = needed("second pass: probability of grey noise")
    jpeg_range2: list = needed("second pass: JPEG quality range")

    @classmethod
    def check(cls, opt: dict, source: str, *, is_train: bool, check_paths: bool) -> None:
        """The on-the-fly degradation's keys, its dataset and its sizes (training only)."""
        if not is_train:
            return
        from basicsr.data.realesrgan_dataset import RealESRGANDataset
        from basicsr.utils.registry import DATASET_REGISTRY

        train_ds = opt["datasets"].get("train", {})
        dataset = lookup(DATASET_REGISTRY, train_ds.get("type"))
        gives_kernels = isinstance(dataset, type) and issubclass(dataset, RealESRGANDataset)
        keys = cls.of(opt)
        if not keys.high_order_degradation:
            if gives_kernels:
                raise fail(
                    source,
                    "datasets.train.type",
                    "RealESRGANDataset gives GT only; with "
                    "high_order_degradation: false train on pairs (e.g. RealESRGANPairedDataset)",
                )
            return
        if not gives_kernels:
            raise fail(
                source,
                "datasets.train.type",
                f"{train_ds.get('type')!r} gives no degradation kernels: use "
                "RealESRGANDataset, or set high_order_degradation: false to train on pairs",
            )
        for f in fields(cls):
            if f.metadata.get("needed") and f.name not in opt:
                raise fail(
                    source, f.name, "missing: the on-the-fly degradation needs it (see options/train/*Real*.yml)"
                )
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
        for f in fields(cls):
            if f.name.replace("2", "").endswith("_range"):
                _check_range(source, opt, f.name)
        scale, gt_size = opt.get("scale", 4), opt["gt_size"]
        crop = train_ds.get("crop_pad_size", REALESRGAN_CROP)  # checked with its dataset's keys
        if crop % scale:
            raise fail(
                source, "scale", f"{scale}: does not divide the GT patch size {crop} (datasets.train.crop_pad_size)"
            )
        if not 0 < gt_size <= crop or gt_size % scale:
            raise fail(
                source,
                "gt_size",
                f"{gt_size}: must be a multiple of scale {scale} and at most the GT patch "
                f"size {crop} (datasets.train.crop_pad_size)",
            )
        queue, batch = keys.queue_size, train_ds.get("batch_size_per_gpu", 1)
        if queue < 0 or (queue and queue % batch):
            raise fail(
                source, "queue_size", f"{queue}: must be 0 or a multiple of datasets.train.batch_size_per_gpu ({batch})"
            )


@dataclass(frozen=True)
class ESRNetKeys(OptionKeys):
    """PLKSRRealESRNetModel's target key."""

    gt_usm: bool = option(True, "train on unsharp-masked GT (Real-ESRGAN x4plus: true)")


@dataclass(frozen=True)
class GANTargetKeys(OptionKeys):
    """PLKSRRealESRGANModel's target keys: which losses see the unsharp-masked GT."""

    l1_gt_usm: bool = option(True, "pixel loss against unsharp-masked GT (x4plus: true)")
    percep_gt_usm: bool = option(True, "perceptual loss against unsharp-masked GT (x4plus: true)")
    gan_gt_usm: bool = option(False, "discriminator's real images unsharp-masked (x4plus: false)")


def _check_probabilities(source: str, opt: dict, key: str, length: int | None = None) -> None:
    value = opt[key]
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in values):
        raise fail(source, key, f"{value!r}: probabilities must be numbers in [0, 1]")
    if length is not None and (len(values) != length or abs(sum(values) - 1) > 1e-6):
        raise fail(source, key, f"{value!r}: expected {length} probabilities that sum to 1")


def _check_range(source: str, opt: dict, key: str) -> None:
    value = opt[key]
    if not (
        len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        and value[0] <= value[1]
    ):
        raise fail(source, key, f"{value!r}: expected [min, max]")


# What BasicSR's SRModel (and every model built on it) and its pipelines read; models add their parts.
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
# What RealESRGANModel adds beside the degradation: the LDL loss.
LDL_SCHEMA: dict[str, Any] = {"train": {"ldl_opt": dict}}
REAL_ESRNET_KEYS: tuple[Any, ...] = (DegradationKeys, ESRNetKeys)
REAL_ESRGAN_KEYS: tuple[Any, ...] = (DegradationKeys, GANTargetKeys, LDL_SCHEMA)


def model_keys() -> dict[str, tuple[Any, ...]]:
    """The parts BasicSR's image models add to SRModel's keys (read from basicsr/models/*.py 1.4.2), by class's
    qualified name."""
    from basicsr.models.realesrgan_model import RealESRGANModel
    from basicsr.models.realesrnet_model import RealESRNetModel
    from basicsr.models.srgan_model import SRGANModel

    return {
        qualname(SRGANModel): (GAN_SCHEMA,),
        qualname(RealESRNetModel): REAL_ESRNET_KEYS,
        qualname(RealESRGANModel): REAL_ESRGAN_KEYS,
    }


def vgg_weights(perceptual_opt: Mapping[str, Any]) -> tuple[str, str]:
    """(path, download URL) of the ImageNet VGG weights `PerceptualLoss` loads: `vgg_weights` of the loss's options,
    by default BasicSR's `experiments/pretrained_models/<torchvision's file name>` (vgg19-dcbb9e9d.pth for VGG19)."""
    import torchvision.models

    vgg_type = str(perceptual_opt.get("vgg_type", "vgg19"))
    enum = getattr(torchvision.models, f"{vgg_type.upper()}_Weights", None)
    url = enum.IMAGENET1K_V1.url if enum is not None else f"torchvision's {vgg_type} ImageNet weights"
    default = osp.join("experiments", "pretrained_models", url.rsplit("/", 1)[-1])
    return osp.expanduser(str(perceptual_opt.get("vgg_weights") or default)), url


def missing_vgg_weights(perceptual_opt: Mapping[str, Any]) -> str | None:
    """Why the VGG weights of a perceptual loss's options cannot be read (no file at `vgg_weights`), or None."""
    path, url = vgg_weights(perceptual_opt)
    if osp.isfile(path):
        return None
    return f"'{path}' does not exist: download {url} there, or name the file in train.perceptual_opt.vgg_weights"


def qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def flat_schema() -> Iterator[tuple[str, tuple[type, ...]]]:
    """(dotted key, YAML types) of `SCHEMA` and the GAN models' parts, for docs/options.md."""

    def walk(prefix: str, schema: Mapping[str, Any]) -> Iterator[tuple[str, tuple[type, ...]]]:
        for name, kind in schema.items():
            if isinstance(kind, dict):
                yield from walk(f"{prefix}{name}.", kind)
            else:
                yield f"{prefix}{name}", kind if isinstance(kind, tuple) else (kind,)

    for part in (SCHEMA, GAN_SCHEMA, LDL_SCHEMA):
        yield from walk("", part)
