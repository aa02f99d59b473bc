"""datasets/images.py: decoding with names, pair sizes, the checked datasets in BasicSR's registry, and errors that
cross a DataLoader worker."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils.data import DataLoader

from plksr_arch.training.datasets.images import (
    ImageError,
    PLKSRPairedImageDataset,
    PLKSRRealESRGANPairedDataset,
    PLKSRSingleImageDataset,
    decode,
    fit_pair,
)

from ..conftest import make_pairs, paired_dataset


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def test_decode_reads_8_bit_16_bit_and_greyscale_as_bgr_floats(caplog) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_allclose(decode(_png(rgb), "a.png"), rgb / 255.0, atol=1e-7)
    deep = rgb.astype(np.uint16) * 257 + 1
    np.testing.assert_allclose(decode(_png(deep), "d.png"), deep / 65535.0, atol=1e-7)  # full precision
    notes: set[str] = set()
    with caplog.at_level("INFO", logger="basicsr"):
        grey = decode(_png(rgb[..., 0]), "g.png", notes)
        decode(_png(rgb[..., 1]), "h.png", notes)
    assert grey.shape == (5, 7, 3) and np.array_equal(grey[..., 0], grey[..., 2])
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["g.png"]  # noted once, with the first name
    assert notes == {"greyscale"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "k.png: not in the LMDB"),
        (b"\x89PNG\r\n\x1a\n broken", "k.png: cannot decode this image (15 bytes: truncated or not an image)"),
    ],
)
def test_decode_names_what_it_cannot_read(content: bytes | None, message: str) -> None:
    with pytest.raises(ImageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode(content, "k.png")


def test_fit_pair_crops_a_gt_past_a_multiple_and_names_a_wrong_lq() -> None:
    gt, lq = np.zeros((50, 49, 3)), np.zeros((12, 12, 3))
    assert fit_pair(gt, lq, 4, "gt.png", "lq.png").shape == (48, 48, 3)
    wrong = r"lq.png is 12x12 but its GT gt.png is 52x48: at scale 4 the LQ must be 13x12"
    with pytest.raises(ImageError, match=wrong):
        fit_pair(np.zeros((48, 52, 3)), lq, 4, "gt.png", "lq.png")


def test_checked_datasets_have_our_names_and_basicsrs_keep_theirs() -> None:
    assert DATASET_REGISTRY.get("PLKSRPairedImageDataset") is PLKSRPairedImageDataset
    assert DATASET_REGISTRY.get("PLKSRSingleImageDataset") is PLKSRSingleImageDataset
    assert DATASET_REGISTRY.get("PLKSRRealESRGANPairedDataset") is PLKSRRealESRGANPairedDataset
    assert DATASET_REGISTRY.get("PairedImageDataset").__module__ == "basicsr.data.paired_image_dataset"
    assert DATASET_REGISTRY.get("SingleImageDataset").__module__ == "basicsr.data.single_image_dataset"
    assert "PairedImageDataset_basicsr" not in DATASET_REGISTRY


def test_real_world_pairs_name_an_unreadable_image(tmp_path: Path) -> None:
    gt, lq = make_pairs(tmp_path, 2, 4, size=64)
    (lq / "img001.png").write_bytes(b"not an image")
    opt = _opt((gt, lq), "train", gt_size=32, use_hflip=True, use_rot=True, scale=4)
    dataset = PLKSRRealESRGANPairedDataset(opt)
    assert dataset[0]["gt"].shape == (3, 32, 32) and dataset[0]["lq"].shape == (3, 8, 8)
    with pytest.raises(ImageError, match=f"{lq / 'img001.png'}: cannot decode"):
        dataset[1]


def _opt(data: tuple[Path, Path], phase: str = "val", **extra) -> dict:
    return {**paired_dataset("set", data), "phase": phase, "scale": 2, **extra}


def test_paired_dataset_matches_basicsrs_on_good_data(tmp_path: Path) -> None:
    data = make_pairs(tmp_path, 2, 2)
    ours = PLKSRPairedImageDataset(_opt(data))[1]
    theirs = DATASET_REGISTRY.get("PairedImageDataset")(_opt(data))[1]
    assert ours.keys() == theirs.keys() and ours["gt_path"] == theirs["gt_path"]
    assert torch.equal(ours["gt"], theirs["gt"]) and torch.equal(ours["lq"], theirs["lq"])
    opt = _opt(data, "train", gt_size=16, use_hflip=False, use_rot=False)
    assert PLKSRPairedImageDataset(opt)[0]["gt"].shape == (3, 16, 16)


def test_paired_dataset_refuses_empty_and_unpaired_folders_and_small_lqs(tmp_path: Path) -> None:
    gt, lq = tmp_path / "GT", tmp_path / "LQ"
    gt.mkdir()
    lq.mkdir()
    with pytest.raises(ImageError, match=f"dataset 'set': no images in {gt} and {lq}"):
        PLKSRPairedImageDataset(_opt((gt, lq)))
    gt, lq = make_pairs(tmp_path / "p", 2, 2)
    (gt / "img001.png").unlink()
    with pytest.raises(ImageError, match=r"dataset 'set' \(.*GT, .*LRx2\): .*different number of images"):
        PLKSRPairedImageDataset(_opt((gt, lq)))
    gt, lq = make_pairs(tmp_path / "q", 1, 2, size=16)
    small = r"img000.png is 8x8, smaller than the LQ patch 12x12 \(gt_size 24 / scale 2\)"
    with pytest.raises(ImageError, match=small):
        PLKSRPairedImageDataset(_opt((gt, lq), "train", gt_size=24, use_hflip=False, use_rot=False))[0]


def test_lmdb_without_meta_info_is_refused(tmp_path: Path) -> None:
    (tmp_path / "gt.lmdb").mkdir()
    (tmp_path / "gt.lmdb" / "data.mdb").write_bytes(b"")
    opt = {**_opt((tmp_path / "gt.lmdb", tmp_path / "gt.lmdb")), "io_backend": {"type": "lmdb"}}
    with pytest.raises(ImageError, match=r"dataroot_gt: '.*gt.lmdb' has no meta_info.txt: not a BasicSR LMDB"):
        PLKSRPairedImageDataset(opt)


def test_single_dataset_names_an_unreadable_image(tmp_path: Path) -> None:
    _, lq = make_pairs(tmp_path, 2, 2)
    (lq / "img001.png").write_bytes(b"not an image")
    dataset = PLKSRSingleImageDataset({"name": "lq", "dataroot_lq": str(lq), "io_backend": {"type": "disk"}})
    assert dataset[0]["lq"].shape == (3, 24, 24)
    with pytest.raises(ImageError, match=f"{lq / 'img001.png'}: cannot decode"):
        dataset[1]


def test_an_image_error_keeps_its_message_across_a_dataloader_worker(tmp_path: Path) -> None:
    gt, lq = make_pairs(tmp_path, 2, 2)
    (gt / "img000.png").write_bytes(b"not an image")
    loader = DataLoader(PLKSRPairedImageDataset(_opt((gt, lq))), batch_size=1, num_workers=1)
    with pytest.raises(ImageError) as raised:
        next(iter(loader))
    assert str(raised.value) == f"{gt / 'img000.png'}: cannot decode this image (12 bytes: truncated or not an image)"
