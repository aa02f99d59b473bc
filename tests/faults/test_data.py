"""Faults in image data: unreadable images, pairs of the wrong size, empty folders, LMDBs without their index,
greyscale and 16-bit images, and `plksr prepare` run again on its own output."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
import torch

from ..conftest import train_options, write_yaml
from .harness import Snapshot, fault, options_for_test, run, tiny_weights

pytestmark = pytest.mark.slow


def truncate(path: Path) -> bytes:
    """Cut `path` to half its size (a failed copy or download); return the whole content."""
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    return content


def test_truncated_image_in_train_set_stops_naming_it_and_the_run_resumes(tmp_path: Path, data) -> None:
    """The bad image is in the third batch (BasicSR's sampler order in epoch 0 is `randperm` seeded with 0): two
    iterations are trained and saved before the run stops, and resume once the file is fixed."""
    gt, lq = data["train"]
    victim = gt / f"img{torch.randperm(6, generator=torch.Generator().manual_seed(0)).tolist()[4]:03d}.png"
    content = truncate(victim)
    opt = train_options(data["train"])
    opt["datasets"]["train"]["num_worker_per_gpu"] = 1  # the error crosses a DataLoader worker
    opt["train"]["total_iter"] = 20
    opt["logger"]["save_checkpoint_freq"] = 100
    path = write_yaml(tmp_path / "train.yml", opt)
    fault(
        "train",
        "-opt",
        str(path),
        cwd=tmp_path,
        names=[f"{victim}: cannot decode this image (", "models and training state saved as iter 2"],
        kept=[gt, lq],
    )
    exp = tmp_path / "experiments" / "tiny"
    assert (exp / "models" / "net_g_2.pth").is_file() and (exp / "training_states" / "2.state").is_file()
    victim.write_bytes(content)
    resumed = run("train", "-opt", str(path), "--auto_resume", "--force_yml", "train:total_iter=4", cwd=tmp_path)
    assert resumed.status == 0, resumed.stderr[-3000:]
    assert "Resuming training from epoch: 0, iter: 2." in resumed.stderr
    assert (exp / "models" / "net_g_latest.pth").is_file()


def test_truncated_image_in_test_set(tmp_path: Path, data) -> None:
    gt, lq = data["val"]
    truncate(lq / "img001.png")
    opt = options_for_test(data["val"], tiny_weights(tmp_path / "w.pth"))
    path = write_yaml(tmp_path / "test.yml", opt)
    fault("test", "-opt", str(path), cwd=tmp_path, names=[f"{lq / 'img001.png'}: cannot decode"], kept=[gt, lq])


def test_truncated_image_in_infer_goes_on_with_the_others(tmp_path: Path, data) -> None:
    lq = data["val"][1]
    weights = tiny_weights(tmp_path / "w.pth")
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.png").write_bytes((lq / "img000.png").read_bytes())  # a file of an earlier run stays
    broken = lq / "broken.png"
    broken.write_bytes((lq / "img000.png").read_bytes()[:100])
    fault("infer", str(weights), str(lq), "-o", str(out), cwd=tmp_path, status=1, names=[str(broken)], kept=[lq, out])
    assert sorted(p.name for p in out.iterdir()) == ["earlier.png", "img000.png", "img001.png"]


def _shrink(path: Path, by: int = 1) -> tuple[int, int]:
    img = cv2.imread(str(path))
    cv2.imwrite(str(path), img[: img.shape[0] - by])
    return img.shape[1], img.shape[0] - by


@pytest.mark.parametrize("command", ["train", "test"])
def test_lr_of_the_wrong_size_names_both_files_and_sizes(command: str, tmp_path: Path, data) -> None:
    gt, lq = data["train" if command == "train" else "val"]
    width, height = _shrink(lq / "img001.png")
    if command == "train":
        path = write_yaml(tmp_path / "train.yml", train_options(data["train"]))
    else:
        path = write_yaml(tmp_path / "test.yml", options_for_test(data["val"], tiny_weights(tmp_path / "w.pth")))
    line = fault(
        command,
        "-opt",
        str(path),
        cwd=tmp_path,
        names=[f"{lq / 'img001.png'} is {width}x{height} but its GT {gt / 'img001.png'} is 48x48", "must be 24x24"],
        kept=[gt, lq],
    )
    assert re.search(r"at scale 2 the LQ must be 24x24", line.line)


def test_empty_training_folders(tmp_path: Path) -> None:
    gt, lq = tmp_path / "GT", tmp_path / "LQ"
    gt.mkdir()
    lq.mkdir()
    path = write_yaml(tmp_path / "train.yml", train_options((gt, lq)))
    fault("train", "-opt", str(path), cwd=tmp_path, names=[f"dataset 'tiny_train': no images in {gt} and {lq}"])


def test_empty_folder_to_infer(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    weights = tiny_weights(tmp_path / "w.pth")
    fault("infer", str(weights), "empty", "-o", "out", cwd=tmp_path, names=["empty: no image or video files found"])


def test_lmdb_without_meta_info(tmp_path: Path, data) -> None:
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs

    roots = []
    for folder, name in zip(data["train"], ("gt", "lq"), strict=True):
        names = sorted(p.name for p in folder.iterdir())
        root = tmp_path / f"{name}.lmdb"
        make_lmdb_from_imgs(str(folder), str(root), names, [n[:-4] for n in names], n_thread=1)
        roots.append(root)
    (roots[0] / "meta_info.txt").unlink()
    opt = train_options(tuple(roots))
    opt["datasets"]["train"]["io_backend"] = {"type": "lmdb"}
    path = write_yaml(tmp_path / "lmdb.yml", opt)
    fault("train", "-opt", str(path), cwd=tmp_path, names=[f"dataroot_gt: '{roots[0]}' has no meta_info.txt"])
    with lmdb.open(str(roots[1]), readonly=True, lock=False) as env:  # the other LMDB is untouched and readable
        assert env.stat()["entries"] == 6


def test_greyscale_and_16_bit_images_train_as_rgb_with_a_note(tmp_path: Path, data) -> None:
    """Not an error: greyscale images are read as three equal channels and 16-bit ones at full precision, each kind
    noted once with the first file's name."""
    gt, lq = data["train"]
    for folder in (gt, lq):
        img = cv2.imread(str(folder / "img000.png"))
        cv2.imwrite(str(folder / "img000.png"), cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
        img = cv2.imread(str(folder / "img001.png"))
        cv2.imwrite(str(folder / "img001.png"), img.astype(np.uint16) * 257)
    snapshot = Snapshot(gt, lq)
    out = run("train", "-opt", str(write_yaml(tmp_path / "train.yml", train_options(data["train"]))), cwd=tmp_path)
    assert out.status == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert re.search(r"img000\.png: greyscale image, read as RGB \(three equal channels\)", log)
    assert re.search(r"img001\.png: 16-bit image, read at 16-bit precision", log)
    snapshot.check()


# `plksr prepare` of 96x96 images into 48 px sub-images at x2 (four per image), in one process
PREPARE = ("--out", "out", "--name", "Mini", "--scales", "2", "--size", "48", "--step", "48", "--workers", "1")


def _hr_images(folder: Path, names: range, rng: np.random.Generator) -> Path:
    folder.mkdir(exist_ok=True)
    for i in names:
        cv2.imwrite(str(folder / f"{i:04d}.png"), rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    return folder


def _lmdb_keys(root: Path) -> list[str]:
    return [line.split(" ")[0] for line in (root / "meta_info.txt").read_text().splitlines()]


def test_prepare_again_skips_complete_outputs(tmp_path: Path) -> None:
    hr = _hr_images(tmp_path / "HR", range(2), np.random.default_rng(0))
    first = run("prepare", str(hr), *PREPARE, cwd=tmp_path)
    assert first.status == 0, first.stderr[-3000:]
    out = tmp_path / "out"
    snapshot = Snapshot(out)
    again = run("prepare", str(hr), *PREPARE, cwd=tmp_path)
    assert again.status == 0 and not again.errors, again.stderr[-3000:]
    assert again.stdout.count("up to date, skipped") == 3  # the sub-image folders (one line), then each LMDB
    snapshot.check()
    assert len(_lmdb_keys(out / "Mini_train_HR_sub.lmdb")) == 8  # 2 images x 4 sub-images, no duplicates


def test_prepare_rebuilds_incomplete_or_stale_outputs_without_duplicates(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    hr = _hr_images(tmp_path / "HR", range(2), rng)
    assert run("prepare", str(hr), *PREPARE, cwd=tmp_path).status == 0
    out = tmp_path / "out"
    _hr_images(hr, range(2, 3), rng)  # a source added
    (out / "Mini_train_HR_sub.partial").mkdir()  # what a killed run leaves
    (out / "Mini_train_HR_sub.partial" / "stale.png").write_bytes(b"x")
    rebuilt = run("prepare", str(hr), *PREPARE, cwd=tmp_path)
    assert rebuilt.status == 0 and not rebuilt.errors, rebuilt.stderr[-3000:]
    keys = _lmdb_keys(out / "Mini_train_HR_sub.lmdb")
    assert len(keys) == len(set(keys)) == 12 and "stale" not in keys
    assert _lmdb_keys(out / "Mini_train_LR_bicubic_X2_sub.lmdb") == keys
    assert not list(out.glob("*.partial*"))


def test_prepare_names_an_unreadable_source(tmp_path: Path) -> None:
    hr = tmp_path / "HR"
    hr.mkdir()
    (hr / "0000.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    fault("prepare", str(hr), *PREPARE, cwd=tmp_path, names=[f"{hr / '0000.png'}: cannot decode this image"], kept=[hr])
