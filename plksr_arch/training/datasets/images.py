"""Training and test images read with their names: BasicSR's paired and single-image datasets, checked.

BasicSR's datasets decode with `cv2.imdecode` and go on with its None, so a truncated or foreign file ends later in
"'NoneType' object has no attribute 'astype'" without its name. In validation and testing they crop the GT to the
LQ's size times the scale, so an LQ of the wrong size is either scored against the wrong crop or fails in the metric
with both names lost; in training they report a wrong-sized pair without the LQ's name. The classes here are
registered as `PLKSRPairedImageDataset`, `PLKSRSingleImageDataset` and `PLKSRRealESRGANPairedDataset` (our commands
read BasicSR's names as these; see `registration`) and differ from BasicSR's in exactly that:

- every image is decoded by `decode`, whose errors (`ImageError`, a `UserError`) name the file (or LMDB and key);
- a pair must have GT size // scale == LQ size (the GT may exceed a multiple of the scale by up to scale-1 pixels,
  as benchmark GTs do; it is then cropped, as BasicSR does), otherwise the error names both files and sizes;
- 16-bit images are read at full precision (BasicSR reduces them to 8 bits) and greyscale ones as three equal
  channels (as BasicSR), each noted once per dataset with the first file's name; alpha is dropped (as BasicSR);
- `color: y` on the single-image set converts from BGR (BasicSR converts its BGR image as if it were RGB).

Folders without images, GT/LQ folders that do not pair and LMDBs without `meta_info.txt` are refused when the dataset
is built, naming the folder. The rest (crops, flips, colour, normalisation) is BasicSR's functions.
"""

from __future__ import annotations

import logging
import os.path as osp
from typing import Any

import cv2
import numpy as np
from basicsr.data.paired_image_dataset import PairedImageDataset as BasicSRPairedImageDataset
from basicsr.data.realesrgan_paired_dataset import RealESRGANPairedDataset as BasicSRRealESRGANPairedDataset
from basicsr.data.single_image_dataset import SingleImageDataset as BasicSRSingleImageDataset
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, bgr2ycbcr, img2tensor
from basicsr.utils.file_client import LmdbBackend
from torchvision.transforms.functional import normalize

from plksr_arch.errors import UserError

logger = logging.getLogger("basicsr")

READ_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH  # grey stays 1 channel, 16-bit stays 16-bit; EXIF applied
PEAKS = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class ImageError(UserError):
    """An image that cannot be used: unreadable, of the wrong size for its pair, or a folder without images."""


def decode(content: bytes | None, name: str, notes: set[str] | None = None) -> np.ndarray:
    """HxWx3 BGR float32 in [0, 1] from an encoded image, as BasicSR's `imfrombytes(float32=True)`.

    `notes` collects the kinds of conversion already logged (`16-bit`, `greyscale`), so each is logged once per set.
    """
    if content is None:
        raise ImageError(f"{name}: not in the LMDB (its meta_info.txt lists it)")
    img = cv2.imdecode(np.frombuffer(content, np.uint8), READ_FLAGS)
    if img is None:
        raise ImageError(f"{name}: cannot decode this image ({len(content):,d} bytes: truncated or not an image)")
    peak = PEAKS.get(img.dtype)
    if peak is None:
        raise ImageError(f"{name}: {img.dtype} pixels: expected an 8- or 16-bit image")
    kinds = [kind for kind, found in (("16-bit", peak > 255), ("greyscale", img.ndim == 2)) if found]
    for kind in kinds:
        if notes is not None and kind not in notes:
            notes.add(kind)
            how = "at 16-bit precision" if kind == "16-bit" else "as RGB (three equal channels)"
            logger.info(f"{name}: {kind} image, read {how}; further {kind} images of this set are read the same way")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return img.astype(np.float32) / peak


def fit_pair(gt: np.ndarray, lq: np.ndarray, scale: int, gt_name: str, lq_name: str) -> np.ndarray:
    """The GT cropped to the LQ's size times `scale`; ImageError naming both files unless GT size // scale is the
    LQ's size."""
    (gh, gw), (lh, lw) = gt.shape[:2], lq.shape[:2]
    if (gh // scale, gw // scale) != (lh, lw):
        raise ImageError(
            f"{lq_name} is {lw}x{lh} but its GT {gt_name} is {gw}x{gh}: at scale {scale} the LQ must be "
            f"{gw // scale}x{gh // scale}"
        )
    return gt[: lh * scale, : lw * scale]


class _NamedReads:
    """BasicSR's constructor, checked, and reading through its FileClient with each image's name (file path, or
    LMDB folder and key)."""

    opt: dict
    paths: list
    file_client: Any
    io_backend_opt: dict

    def _build(self, basicsr_class: type, opt: dict, roots: tuple[str, ...]) -> None:
        """Run `basicsr_class`'s constructor, turning its assertions (GT/LQ folders that do not pair) into
        ImageErrors naming the dataset; refuse LMDBs without meta_info.txt and sets without images."""
        where, folders = f"dataset {opt.get('name')!r}", [str(opt[root]) for root in roots]
        if opt["io_backend"].get("type") == "lmdb":
            for root, folder in zip(roots, folders, strict=True):
                problem = lmdb_problem(folder)
                if problem:
                    raise ImageError(f"{where}: {root}: {problem}")
        try:
            basicsr_class.__init__(self, opt)
        except AssertionError as err:
            raise ImageError(f"{where} ({', '.join(folders)}): {err}") from None
        if not self.paths:
            raise ImageError(f"{where}: no images in {' and '.join(folders)}")
        self._notes: set[str] = set()

    def _read(self, path: str, client_key: str) -> np.ndarray:
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop("type"), **self.io_backend_opt)
        name = path
        if isinstance(self.file_client.client, LmdbBackend):
            name = f"{self.opt[f'dataroot_{client_key}']} (key {path})"
        return decode(self.file_client.get(path, client_key), name, self._notes)


class _CheckedPairs(_NamedReads):
    """A GT/LQ pair per item, as BasicSR's paired datasets give it: crop and flips in training, `color: y` if
    asked, normalisation; read with names and with the pair's sizes checked."""

    mean: Any
    std: Any

    def __getitem__(self, index: int) -> dict:
        gt_path, lq_path = self.paths[index]["gt_path"], self.paths[index]["lq_path"]
        gt, lq = self._read(gt_path, "gt"), self._read(lq_path, "lq")
        scale = self.opt["scale"]
        gt = fit_pair(gt, lq, scale, gt_path, lq_path)
        if self.opt["phase"] == "train":
            patch = self.opt["gt_size"] // scale
            if min(lq.shape[:2]) < patch:
                raise ImageError(
                    f"{lq_path} is {lq.shape[1]}x{lq.shape[0]}, smaller than the LQ patch {patch}x{patch} (gt_size "
                    f"{self.opt['gt_size']} / scale {scale}): remove the pair or lower gt_size"
                )
            gt, lq = paired_random_crop(gt, lq, self.opt["gt_size"], scale, gt_path)
            gt, lq = augment([gt, lq], self.opt["use_hflip"], self.opt["use_rot"])
        if self.opt.get("color") == "y":
            gt, lq = bgr2ycbcr(gt, y_only=True)[..., None], bgr2ycbcr(lq, y_only=True)[..., None]
        gt, lq = img2tensor([gt, lq], bgr2rgb=True, float32=True)
        if self.mean is not None or self.std is not None:
            normalize(lq, self.mean, self.std, inplace=True)
            normalize(gt, self.mean, self.std, inplace=True)
        return {"lq": lq, "gt": gt, "lq_path": lq_path, "gt_path": gt_path}


class PLKSRPairedImageDataset(_CheckedPairs, BasicSRPairedImageDataset):
    """BasicSR's paired GT/LQ dataset with named read errors and checked pair sizes (module docstring)."""

    def __init__(self, opt: dict) -> None:
        self._build(BasicSRPairedImageDataset, opt, ("dataroot_gt", "dataroot_lq"))


class PLKSRRealESRGANPairedDataset(_CheckedPairs, BasicSRRealESRGANPairedDataset):
    """BasicSR's paired set for real-world models trained on given pairs (`high_order_degradation: false`; its
    `meta_info` lists `gt, lq` per line), checked the same way."""

    def __init__(self, opt: dict) -> None:
        self._build(BasicSRRealESRGANPairedDataset, opt, ("dataroot_gt", "dataroot_lq"))


class PLKSRSingleImageDataset(_NamedReads, BasicSRSingleImageDataset):
    """BasicSR's LQ-only dataset with named read errors (module docstring)."""

    def __init__(self, opt: dict) -> None:
        self._build(BasicSRSingleImageDataset, opt, ("dataroot_lq",))

    def __getitem__(self, index: int) -> dict:
        lq_path = self.paths[index]
        lq = self._read(lq_path, "lq")
        if self.opt.get("color") == "y":
            lq = bgr2ycbcr(lq, y_only=True)[..., None]  # BasicSR calls rgb2ycbcr on its BGR image here
        lq = img2tensor(lq, bgr2rgb=True, float32=True)
        if self.mean is not None or self.std is not None:
            normalize(lq, self.mean, self.std, inplace=True)
        return {"lq": lq, "lq_path": lq_path}


def lmdb_problem(folder: str) -> str | None:
    """Why `folder` is not a BasicSR LMDB (data.mdb and meta_info.txt inside), or None."""
    missing = [f for f in ("data.mdb", "meta_info.txt") if not osp.isfile(osp.join(folder, f))]
    if missing:
        return f"'{folder}' has no {' or '.join(missing)}: not a BasicSR LMDB (plksr prepare writes them)"
    return None
