"""RealESRGANDataset with the GT patch size as an option (`crop_pad_size`; BasicSR hard-codes 400).

BasicSR's dataset pads or crops every GT image to 400x400 and draws the two blur kernels and the sinc kernel; the
model then degrades the whole 400x400 patch on the device and crops `gt_size` from the result. On a CPU that
degradation is most of a training step, so a smaller `crop_pad_size` (at least `gt_size`) makes real-world training on
a laptop practical. The smaller patch is cut from BasicSR's 400x400 one, so an image under 400 px on a side is
reflect-padded first, as in BasicSR. Registered as `PLKSRRealESRGANDataset` (our commands read `RealESRGANDataset` as
it), it behaves as BasicSR's with the default 400. An image that cannot be decoded is named (`images.ImageError`).
"""

from __future__ import annotations

import random

from basicsr.data.realesrgan_dataset import RealESRGANDataset as BasicSRRealESRGANDataset

from plksr_arch.training.datasets.images import decode
from plksr_arch.training.options import REALESRGAN_CROP as DEFAULT_CROP


class PLKSRRealESRGANDataset(BasicSRRealESRGANDataset):
    """GT patches of `crop_pad_size` (default 400, BasicSR's) with Real-ESRGAN's kernels, for PLKSRRealESRNetModel
    and PLKSRRealESRGANModel."""

    option_keys = ("crop_pad_size",)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.crop_pad_size = int(opt.get("crop_pad_size", DEFAULT_CROP))
        if not 0 < self.crop_pad_size <= DEFAULT_CROP:
            raise ValueError(f"crop_pad_size {self.crop_pad_size}: must be in 1..{DEFAULT_CROP}")

    def __getitem__(self, index: int) -> dict:
        try:
            item = super().__getitem__(index)
        except AttributeError:  # BasicSR decodes with imfrombytes and goes on with its None: name the file
            path = self.paths[index]
            decode(self.file_client.get(path, "gt"), path)
            raise
        size = self.crop_pad_size
        if size < DEFAULT_CROP:
            top, left = random.randint(0, DEFAULT_CROP - size), random.randint(0, DEFAULT_CROP - size)
            item["gt"] = item["gt"][:, top : top + size, left : left + size].contiguous()
        return item
