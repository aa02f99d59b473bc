"""Synthetic real-world pairs: HR images degraded by the training degradation (Real-ESRGAN's second-order pipeline,
BasicSR's code through `training.models.realesr_model.Degradation`) with a fixed seed, for validation sets and
`plksr demo --real`. Each pair depends only on its image, its index and the seed, so a validation set is the same
on every run.
"""

from __future__ import annotations

import os
import os.path as osp
import random
import tempfile
from collections.abc import Sequence
from importlib import resources

import numpy as np
import yaml

from plksr_arch.data.preparation import write_png
from plksr_arch.training.basicsr_keys import REALESRGAN_CROP


def recipe() -> dict:
    """Real-ESRGAN's x4plus degradation settings (`realesrgan_x4plus.yml`): `model` (top-level keys) and `dataset`
    (RealESRGANDataset's kernel keys)."""
    return yaml.safe_load(resources.files("plksr_arch.resources").joinpath("realesrgan_x4plus.yml").read_text("utf-8"))


def degraded_pairs(paths: Sequence[str], out: str, scale: int, size: int = REALESRGAN_CROP, seed: int = 0) -> dict:
    """Write `out/GT/<stem>.png` (the centre crop of each image, `size` or its shorter side, cut to a multiple of
    `scale`) and `out/LQ/<stem>.png` (that crop degraded and downscaled x`scale`, 8-bit); return both folders.

    The kernels come from RealESRGANDataset (they do not depend on the image), the degradation from the training
    code. The LQ is degraded from the plain GT (`gt_usm: false`): PSNR against the GT then measures restoration, not
    sharpening. Runs on the CPU; seeds Python's, NumPy's and torch's global generators."""
    import cv2
    import torch
    from basicsr.utils import img2tensor, tensor2img
    from torch.utils.data import default_collate

    from plksr_arch.training.datasets.realesrgan import PLKSRRealESRGANDataset
    from plksr_arch.training.models.realesr_model import Degradation

    folders = {"gt": osp.join(out, "GT"), "lq": osp.join(out, "LQ")}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    settings = recipe()
    with tempfile.TemporaryDirectory() as tmp:
        meta = osp.join(tmp, "meta_info.txt")
        with open(meta, "w", encoding="utf-8") as f:
            f.writelines(osp.abspath(path) + "\n" for path in paths)
        kernels = PLKSRRealESRGANDataset(
            {
                **settings["dataset"],
                "dataroot_gt": "",
                "meta_info": meta,
                "io_backend": {"type": "disk"},
                "use_hflip": False,
                "use_rot": False,
            }
        )
        for index, path in enumerate(paths):
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise OSError(f"{path}: not a readable image")
            crop = min(size, img.shape[0], img.shape[1])
            crop -= crop % scale
            top, left = (img.shape[0] - crop) // 2, (img.shape[1] - crop) // 2
            gt = img2tensor(img[top : top + crop, left : left + crop].astype(np.float32) / 255.0)
            model_opt = {**settings["model"], "scale": scale, "gt_size": crop, "queue_size": 0, "gt_usm": False}
            random.seed(seed + index)
            np.random.seed(seed + index)
            torch.manual_seed(seed + index)
            batch = default_collate([{**kernels[index], "gt": gt}])
            gt, lq, _ = Degradation(model_opt, torch.device("cpu"), gan=False)(batch)
            stem = osp.splitext(osp.basename(path))[0]
            write_png(osp.join(folders["gt"], f"{stem}.png"), tensor2img(gt))
            write_png(osp.join(folders["lq"], f"{stem}.png"), tensor2img(lq))
    return folders
