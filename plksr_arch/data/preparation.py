"""Dataset preparation as BasicSR trains on it: MATLAB-bicubic LR, aligned sub-images, LMDB; GT-only sets for
real-world training.

`prepare_dataset` turns a folder of HR images (DIV2K, DF2K, ...) into
`<out>/<name>_train_HR_sub.lmdb` and `<out>/<name>_train_LR_bicubic_X<s>_sub.lmdb` for each scale, the paths the
shipped option files use. HR images are cropped to a multiple of every requested scale, so one HR sub-image set
serves all scales and each LR sub-image is exactly its HR twin downscaled.

`prepare_real` writes what RealESRGANDataset reads: GT sub-images (optionally of Real-ESRGAN's multi-scale copies too)
and a `meta_info` list of their paths relative to `<out>`, the layout of the shipped `*_RealESR*` option files.

Running either again on the same output is safe (`build_once`): each output folder or LMDB is built in a `.partial`
sibling and moved into place with a stamp of what it was made from (source files' names, sizes and times, and the
settings); an output whose stamp matches is skipped, any other (incomplete, made with other settings or sources, or
not made by us) is rebuilt and replaced only once the new one is complete.
"""

from __future__ import annotations

import json
import logging
import math
import os
import os.path as osp
import shutil
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from multiprocessing import Pool
from typing import TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from plksr_arch.errors import UserError

T = TypeVar("T")
logger = logging.getLogger("plksr")
STAMP = ".plksr-prepare.json"  # hidden: BasicSR's folder scans skip names starting with "."
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def modcrop(img: np.ndarray, multiple: int) -> np.ndarray:
    """Crop the bottom/right edges so height and width are multiples of `multiple`."""
    h, w = img.shape[0] - img.shape[0] % multiple, img.shape[1] - img.shape[1] % multiple
    return img[:h, :w]


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-compatible bicubic downscale (BasicSR's `imresize`, antialiased) of a uint8 image, rounded to uint8."""
    from basicsr.utils.matlab_functions import imresize

    if hr.shape[0] % scale or hr.shape[1] % scale:
        raise ValueError(f"image of size {hr.shape[1]}x{hr.shape[0]} is not a multiple of scale {scale}")
    lr = imresize(hr.astype(np.float32) / 255.0, 1 / scale)
    return (np.clip(lr, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def crop_starts(length: int, size: int, step: int, multiple: int = 1) -> list[int]:
    """Top/left offsets of `size` crops every `step` pixels, plus one flush with the end (a multiple of `multiple`)."""
    if length < size:
        return []
    starts = list(range(0, length - size + 1, step))
    last = (length - size) // multiple * multiple
    if starts[-1] != last:
        starts.append(last)
    return starts


def subimage_boxes(h: int, w: int, size: int, step: int, multiple: int) -> list[tuple[int, int]]:
    """(y, x) of every sub-image of an h x w image, in row-major order."""
    return [(y, x) for y in crop_starts(h, size, step, multiple) for x in crop_starts(w, size, step, multiple)]


def write_png(path: str, img: np.ndarray, compression: int = 3) -> None:
    if not cv2.imwrite(path, img, [cv2.IMWRITE_PNG_COMPRESSION, compression]):
        raise OSError(f"could not write {path}")


def _process_image(path: str, folders: dict[int | str, str], scales: Sequence[int], size: int, step: int) -> None:
    """Write the HR and LR sub-images of one HR image."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"{path}: cannot decode this image (truncated, or not an image)")
    multiple = math.lcm(*scales)
    hr = modcrop(img, multiple)
    lrs = {s: bicubic_lr(hr, s) for s in scales}
    stem = osp.splitext(osp.basename(path))[0]
    for i, (y, x) in enumerate(subimage_boxes(hr.shape[0], hr.shape[1], size, step, multiple), 1):
        name = f"{stem}_s{i:03d}.png"
        write_png(osp.join(folders["hr"], name), hr[y : y + size, x : x + size])
        for s in scales:
            ly, lx, ls = y // s, x // s, size // s
            write_png(osp.join(folders[s], name), lrs[s][ly : ly + ls, lx : lx + ls])


def _parallel(work: Callable[[str], T], items: Sequence[str], workers: int) -> Iterator[T]:
    """`work(item)` for each item, in order, in `workers` processes (in this one for a single worker)."""
    if workers > 1:
        with Pool(workers) as pool:
            yield from pool.imap(work, items)
    else:
        yield from map(work, items)


def tiling_problem(scales: Sequence[int], size: int, step: int) -> str | None:
    """Why `size`/`step` cannot tile every scale exactly (both must be multiples of each scale), or None."""
    if any(s < 1 or size % s or step % s for s in scales):
        return (
            f"--size {size} and --step {step} must be multiples of every scale "
            f"(got --scales {' '.join(map(str, scales))})"
        )
    return None


def list_images(folder: str) -> list[str]:
    """Image files directly in `folder`, sorted; raises FileNotFoundError naming the folder when there are none."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder")
    paths = sorted(osp.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise FileNotFoundError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return paths


def sources(paths: Sequence[str]) -> list[list]:
    """What a stamp records of the source images: name, size and modification time of each."""
    return [[osp.basename(p), osp.getsize(p), os.stat(p).st_mtime_ns] for p in paths]


def is_built(path: str, stamp: dict) -> bool:
    """Whether `path` is a complete output made from exactly `stamp` (see `build_once`)."""
    try:
        with open(osp.join(path, STAMP), encoding="utf-8") as f:
            return json.load(f) == stamp
    except (OSError, ValueError):
        return False


def build_once(path: str, stamp: dict, build: Callable[[str], None], staging: str | None = None) -> bool:
    """Make the output folder `path` with `build(folder)` (which creates `folder`) unless it is already built from
    `stamp`; return whether it was built. The build goes to `staging` (default `<path>.partial`) and is then
    `publish`ed: a run stopped midway leaves `path` as it was."""
    if is_built(path, stamp):
        logger.info(f"{path}: up to date, skipped")
        return False
    staging = staging or path + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    build(staging)
    publish(staging, path, stamp)
    return True


def publish(staging: str, path: str, stamp: dict) -> None:
    """Stamp the complete folder `staging` and move it to `path`, replacing what was there (logged)."""
    with open(osp.join(staging, STAMP), "w", encoding="utf-8") as f:
        json.dump(stamp, f)
    if osp.exists(path):
        logger.info(f"{path}: incomplete or made from other sources or settings: replaced")
        shutil.rmtree(path)
    os.rename(staging, path)


def make_lmdb(folder: str, lmdb_path: str) -> None:
    """Pack every PNG of `folder` into a BasicSR LMDB (keys = file stems, meta_info.txt beside); `lmdb_path` must
    not exist (BasicSR's writer exits if it does)."""
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs

    names = sorted(f for f in os.listdir(folder) if f.endswith(".png"))
    make_lmdb_from_imgs(folder, lmdb_path, names, [osp.splitext(n)[0] for n in names], n_thread=1)


def prepare_dataset(
    hr_folder: str,
    out: str,
    name: str,
    scales: Sequence[int] = (2, 3, 4),
    size: int = 480,
    step: int = 240,
    workers: int = 1,
    lmdb: bool = True,
    progress: bool = False,
) -> dict[str, str]:
    """Sub-images (HR `size` px every `step` px) and their LR twins for each scale, then LMDBs; returns the paths.

    BasicSR's DIV2K recipe uses 480/240 for HR (120/60 for x4 LR). `size` and `step` must be multiples of every
    scale. Without `lmdb` the PNG folders are the result (use `io_backend: {type: disk}`). `progress` shows a bar.
    """
    problem = tiling_problem(scales, size, step)
    if problem:
        raise ValueError(problem)
    paths = list_images(hr_folder)
    folders: dict[int | str, str] = {"hr": osp.join(out, f"{name}_train_HR_sub")}
    folders.update({s: osp.join(out, f"{name}_train_LR_bicubic_X{s}_sub") for s in scales})
    made = {"sources": sources(paths), "scales": list(scales), "size": size, "step": step}
    stamps = {key: {"made": f"sub-images {key}", **made} for key in folders}
    if all(is_built(folders[key], stamps[key]) for key in folders):
        logger.info(f"{', '.join(folders.values())}: up to date, skipped")
    else:
        staging = {key: folder + ".partial" for key, folder in folders.items()}
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
        work = partial(_process_image, folders=staging, scales=scales, size=size, step=step)
        with tqdm(total=len(paths), unit="image", desc="sub-images", disable=not progress) as bar:
            for _ in _parallel(work, paths, workers):
                bar.update()
        for key, folder in folders.items():
            publish(staging[key], folder, stamps[key])
    results = {"hr": folders["hr"], **{f"x{s}": folders[s] for s in scales}}
    if lmdb:
        for key, folder in list(results.items()):
            stamp = {"made": "lmdb", "of": stamps["hr" if key == "hr" else int(key[1:])]}
            build_once(folder + ".lmdb", stamp, partial(make_lmdb, folder), staging=folder + ".partial.lmdb")
            results[key] = folder + ".lmdb"
    return results


# Real-ESRGAN's multi-scale GT (scripts/generate_multiscale_DF2K.py): three LANCZOS downscales, and one whose shorter
# side is 400 px, beside each original.
MULTISCALE_FACTORS = (0.75, 0.5, 1 / 3)
MULTISCALE_SHORT_SIDE = 400


def multiscale(img: np.ndarray) -> list[np.ndarray]:
    """Real-ESRGAN's multi-scale copies of an HR image (PIL LANCZOS, as its script), original excluded."""
    from PIL import Image

    pil = Image.fromarray(img[..., ::-1])
    h, w = img.shape[:2]
    sizes = [(int(w * f), int(h * f)) for f in MULTISCALE_FACTORS]
    short = MULTISCALE_SHORT_SIDE
    sizes.append((short, int(short * h / w)) if w < h else (int(short * w / h), short))
    return [np.ascontiguousarray(np.asarray(pil.resize(size, Image.LANCZOS))[..., ::-1]) for size in sizes]


def _process_real(path: str, folder: str, size: int, step: int, with_multiscale: bool) -> None:
    """Write the GT sub-images of one HR image (and of its multi-scale copies)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"{path}: cannot decode this image (truncated, or not an image)")
    stem = osp.splitext(osp.basename(path))[0]
    variants = [("", img)] + ([(f"T{i}", v) for i, v in enumerate(multiscale(img))] if with_multiscale else [])
    for tag, image in variants:
        boxes = subimage_boxes(image.shape[0], image.shape[1], size, step, 1) or [(0, 0)]  # small: whole image
        for i, (y, x) in enumerate(boxes, 1):
            write_png(osp.join(folder, f"{stem}{tag}_s{i:03d}.png"), image[y : y + size, x : x + size])


def prepare_real(
    hr_folder: str,
    out: str,
    name: str,
    size: int = 400,
    step: int = 200,
    with_multiscale: bool = False,
    workers: int = 1,
    progress: bool = False,
) -> dict[str, str]:
    """GT sub-images (`size` px every `step` px; images smaller than `size` whole) in `<out>/<name>_HR_sub`, with
    Real-ESRGAN's multi-scale copies when `with_multiscale`, and `<out>/meta_info/meta_info_<name>_sub.txt` listing
    them relative to `<out>` (RealESRGANDataset: `dataroot_gt: <out>`, `meta_info: that file`)."""
    paths = list_images(hr_folder)
    folder = osp.join(out, f"{name}_HR_sub")
    meta = osp.join(out, "meta_info", f"meta_info_{name}_sub.txt")
    stamp = {
        "made": "GT sub-images",
        "sources": sources(paths),
        "size": size,
        "step": step,
        "multiscale": with_multiscale,
    }

    def build(staging: str) -> None:
        os.makedirs(staging)
        work = partial(_process_real, folder=staging, size=size, step=step, with_multiscale=with_multiscale)
        with tqdm(total=len(paths), unit="image", desc="GT sub-images", disable=not progress) as bar:
            for _ in _parallel(work, paths, workers):
                bar.update()

    build_once(folder, stamp, build)
    os.makedirs(osp.dirname(meta), exist_ok=True)
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    with open(meta + ".partial", "w", encoding="utf-8") as f:
        f.writelines(f"{osp.basename(folder)}/{n}\n" for n in names)
    os.replace(meta + ".partial", meta)
    return {"gt": folder, "meta_info": meta}
