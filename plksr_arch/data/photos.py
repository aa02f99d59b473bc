"""The embedded demo's data: a paired SR dataset from the photos scikit-image ships offline (`demo.yml` beside this
file is its training recipe, read by `plksr_arch.training.demo_pipeline`).

Train photos and held-out test photos never overlap. HR images are cropped to a multiple of the scale, LR images are
made with BasicSR's MATLAB-compatible bicubic `imresize` (as the benchmark sets are), and training pairs are cut into
aligned sub-images so the data loader decodes small PNGs instead of whole photos.
"""

from __future__ import annotations

import os
import os.path as osp

import numpy as np

from plksr_arch.data.preparation import bicubic_lr, modcrop, subimage_boxes, write_png

# CC0 / public-domain photos in scikit-image's package data (no download); greyscale ones add texture variety.
TRAIN_PHOTOS = (
    "astronaut",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "stereo_motorcycle",
    "camera",
    "brick",
    "gravel",
    "grass",
    "coins",
    "moon",
)
TEST_PHOTOS = ("chelsea", "coffee")
SUB_SIZE, SUB_STEP = 240, 120  # HR sub-image size and stride (multiples of 2, 3 and 4)
REAL_HELDOUT_SIZE = 256  # centre crop of each held-out photo degraded for `plksr demo --real`


def load_photo(name: str) -> np.ndarray:
    """One scikit-image photo as an HxWx3 uint8 BGR array (greyscale replicated), as cv2 would read it."""
    from skimage import data

    img = getattr(data, name)()
    img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle: (left, right, disparity)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., 2::-1])


def build_dataset(root: str, scale: int) -> dict[str, str]:
    """Write `root/{train,test}/{GT,LRx<scale>}` (train as aligned sub-images) and return the four folders."""
    folders = {
        f"{split}_{kind}": osp.join(root, split, "GT" if kind == "gt" else f"LRx{scale}")
        for split in ("train", "test")
        for kind in ("gt", "lq")
    }
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    for name in TEST_PHOTOS:
        hr = modcrop(load_photo(name), scale)
        write_png(osp.join(folders["test_gt"], f"{name}.png"), hr, compression=1)
        write_png(osp.join(folders["test_lq"], f"{name}.png"), bicubic_lr(hr, scale), compression=1)
    for name in TRAIN_PHOTOS:
        hr = modcrop(load_photo(name), scale)
        lr = bicubic_lr(hr, scale)
        for y, x in subimage_boxes(hr.shape[0], hr.shape[1], SUB_SIZE, SUB_STEP, scale):
            stem = f"{name}_s{y:04d}_{x:04d}.png"
            write_png(osp.join(folders["train_gt"], stem), hr[y : y + SUB_SIZE, x : x + SUB_SIZE], compression=1)
            ly, lx, ls = y // scale, x // scale, SUB_SIZE // scale
            write_png(osp.join(folders["train_lq"], stem), lr[ly : ly + ls, lx : lx + ls], compression=1)
    return folders
