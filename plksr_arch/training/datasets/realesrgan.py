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
from dataclasses import dataclass
from typing import ClassVar

from basicsr.data.realesrgan_dataset import RealESRGANDataset as BasicSRRealESRGANDataset

from plksr_arch.training.basicsr_keys import REALESRGAN_CROP
from plksr_arch.training.datasets.images import decode
from plksr_arch.training.keys import OptionKeys, fail, option


def crop_problem(size: object) -> str | None:
    """What is wrong with a `crop_pad_size` (an int in 1..400, BasicSR's patch size), or None."""
    if isinstance(size, int) and not isinstance(size, bool) and 0 < size <= REALESRGAN_CROP:
        return None
    return f"{size!r}: must be an int in 1..{REALESRGAN_CROP}"


@dataclass(frozen=True)
class CropKeys(OptionKeys):
    """The key PLKSRRealESRGANDataset adds to BasicSR's RealESRGANDataset."""

    section: ClassVar[str] = "dataset"

    crop_pad_size: int = option(REALESRGAN_CROP, "GT patch size cut from BasicSR's 400x400 one (at least gt_size)")

    @classmethod
    def check(cls, opt: dict, source: str, *, is_train: bool, check_paths: bool) -> None:
        for phase, dataset in opt["datasets"].items():
            problem = crop_problem(cls.read(dataset).crop_pad_size)
            if problem:
                raise fail(source, f"datasets.{phase}.crop_pad_size", problem)


class PLKSRRealESRGANDataset(BasicSRRealESRGANDataset):
    """GT patches of `crop_pad_size` (default 400, BasicSR's) with Real-ESRGAN's kernels, for PLKSRRealESRNetModel
    and PLKSRRealESRGANModel."""

    option_keys = (CropKeys,)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.crop_pad_size = CropKeys.read(opt).crop_pad_size
        problem = crop_problem(self.crop_pad_size)
        if problem:
            raise ValueError(f"crop_pad_size {problem}")

    def __getitem__(self, index: int) -> dict:
        try:
            item = super().__getitem__(index)
        except AttributeError:  # BasicSR decodes with imfrombytes and goes on with its None: name the file
            path = self.paths[index]
            decode(self.file_client.get(path, "gt"), path)
            raise
        size = self.crop_pad_size
        if size < REALESRGAN_CROP:
            top, left = random.randint(0, REALESRGAN_CROP - size), random.randint(0, REALESRGAN_CROP - size)
            item["gt"] = item["gt"][:, top : top + size, left : left + size].contiguous()
        return item
