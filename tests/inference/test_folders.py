"""Folder inference (pipeline.upscale_files): overlapped reading/writing gives the same files as one image at a
time, same-size neighbours share a pass, and every bad file is a problem of its own while the others are written."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from plksr_arch import PLKSR, Upscaler
from plksr_arch.inference.folders import swap_rb, upscale_files

from ..conftest import TINY_NET


def _upscaler() -> Upscaler:
    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2).eval()
    return Upscaler(net, "cpu", "fp32")


def _images(folder: Path, sizes: list[tuple[int, int]]) -> list[str]:
    rng = np.random.default_rng(0)
    folder.mkdir()
    paths = []
    for i, (h, w) in enumerate(sizes):
        path = folder / f"{i:02d}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("overlap", [False, True])
def test_overlapped_batches_write_what_one_image_at_a_time_gives(tmp_path: Path, overlap: bool) -> None:
    files = _images(tmp_path / "in", [(12, 16), (12, 16), (12, 16), (10, 10), (12, 16)])
    upscaler = _upscaler()
    passes = []
    original = upscaler.batch
    upscaler.batch = lambda imgs: passes.append(len(imgs)) or original(imgs)
    done = upscale_files(upscaler, files, str(tmp_path / "out"), batch=2, overlap=overlap)
    assert passes == [2, 1, 1, 1]  # consecutive same-size images, at most two; a new size starts a new pass
    assert done.problems == [] and len(done.written) == 5 and done.network_seconds > 0
    for path in files:
        expected = swap_rb(original([swap_rb(cv2.imread(path))])[0])
        written = cv2.imread(str(tmp_path / "out" / Path(path).name))
        assert written.shape == (expected.shape[0], expected.shape[1], 3)
        assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1  # batched vs single pass rounding


@pytest.mark.parametrize("overlap", [False, True])
def test_bad_files_are_problems_of_their_own(tmp_path: Path, overlap: bool) -> None:
    files = _images(tmp_path / "in", [(8, 8), (8, 8)])
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(b"not an image")
    other = tmp_path / "other"
    other.mkdir()
    twin = other / "00.png"
    cv2.imwrite(str(twin), np.zeros((8, 8, 3), np.uint8))
    floats = tmp_path / "in" / "float.tiff"
    cv2.imwrite(str(floats), np.zeros((8, 8, 3), np.float32))
    out = tmp_path / "out"
    out.mkdir()
    (out / "01.png").mkdir()  # a folder where the output file should go: the write fails
    done = upscale_files(_upscaler(), [*files, str(broken), str(twin), str(floats)], str(out), overlap=overlap)
    assert sorted(done.problems) == sorted(
        [
            f"{broken}: cannot read this image",
            f"{twin}: same output name as {files[0]} ({out / '00.png'}); skipped",
            f"{floats}: image dtype float32 is not supported (uint8 or uint16)",
            f"{out / '01.png'}: cannot write this image",
        ]
    )
    assert done.written == {str(out / "00.png"): files[0]}
