"""Data for real-world training: `prepare_real` (GT sub-images, multi-scale copies, meta_info), `degraded_pairs`
(seeded degraded validation pairs) and `plksr prepare --real / --degraded-val` errors; re-runs (`build_once`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from plksr_arch.cli import main
from plksr_arch.data.preparation import build_once, prepare_real
from plksr_arch.training.degrade import degraded_pairs, recipe

from ..conftest import make_hr


def test_prepare_real_writes_gt_sub_images_and_meta_info(tmp_path) -> None:
    root, _ = make_hr(tmp_path / "in", 2, size=96)
    (root / "hr" / "small.png").write_bytes(cv2.imencode(".png", np.zeros((40, 30, 3), np.uint8))[1].tobytes())
    result = prepare_real(str(root / "hr"), str(tmp_path / "out"), "T", size=64, step=32, with_multiscale=True)
    lines = Path(result["meta_info"]).read_text().splitlines()
    assert result["meta_info"] == str(tmp_path / "out" / "meta_info" / "meta_info_T_sub.txt")
    assert all(line.startswith("T_HR_sub/") and (tmp_path / "out" / line).is_file() for line in lines)
    # 96 px: 2x2 crops of 64 every 32; T0 (72 px): 2x2; T1 (48), T2 (32): whole; T3 (shorter side 400): 12x12
    assert sum(line.startswith("T_HR_sub/img000") for line in lines) == 4 + 4 + 1 + 1 + 144
    assert cv2.imread(str(tmp_path / "out" / "T_HR_sub" / "img000T1_s001.png")).shape == (48, 48, 3)
    assert cv2.imread(str(tmp_path / "out" / "T_HR_sub" / "small_s001.png")).shape == (40, 30, 3)  # smaller: whole


def test_degraded_pairs_are_seeded_centre_crops(tmp_path) -> None:
    root, _ = make_hr(tmp_path / "in", 2, size=80)
    paths = sorted(str(p) for p in (root / "hr").iterdir())
    first = degraded_pairs(paths, str(tmp_path / "a"), 4, size=64, seed=3)
    degraded_pairs(paths, str(tmp_path / "b"), 4, size=64, seed=3)
    degraded_pairs(paths, str(tmp_path / "c"), 4, size=64, seed=4)
    name = Path(paths[0]).name
    gt, lq = (cv2.imread(str(Path(first[k]) / name)) for k in ("gt", "lq"))
    assert gt.shape == (64, 64, 3) and lq.shape == (16, 16, 3)
    assert np.array_equal(gt, cv2.imread(paths[0])[8:72, 8:72])  # the centre crop, untouched
    assert np.array_equal(lq, cv2.imread(str(tmp_path / "b" / "LQ" / name)))  # same seed, same LQ
    assert not np.array_equal(lq, cv2.imread(str(tmp_path / "c" / "LQ" / name)))


def test_recipe_is_real_esrgans_x4plus() -> None:
    settings = recipe()
    assert settings["model"]["resize_prob"] == [0.2, 0.7, 0.1] and settings["model"]["jpeg_range2"] == [30, 95]
    assert settings["dataset"]["final_sinc_prob"] == 0.8 and settings["dataset"]["blur_sigma2"] == [0.2, 1.5]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--multiscale"], "--multiscale: only with --real"),
        (["--real", "--scales", "4"], "--scales: --real writes GT only"),
        (["--degraded-val", "--scales", "3"], "--scales 3: the real-world degradation supports x2 and x4"),
        (["--real", "--step", "0"], "--step 0: must be >= 1"),
    ],
)
def test_prepare_real_modes_reject_bad_arguments(tmp_path, capsys, args: list[str], named: str) -> None:
    root, _ = make_hr(tmp_path / "in", 1)
    assert main(["prepare", str(root / "hr"), "--out", str(tmp_path / "o"), "--name", "X", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("plksr prepare: error: ") and named in err


def test_build_once_skips_what_is_built_and_replaces_the_rest(tmp_path) -> None:
    out = str(tmp_path / "out")
    calls = []

    def build(folder: str) -> None:
        calls.append(folder)
        Path(folder).mkdir()
        (Path(folder) / f"{len(calls)}.png").write_bytes(b"x")

    assert build_once(out, {"v": 1}, build) and build_once(out, {"v": 1}, build) is False
    assert calls == [out + ".partial"] and sorted(p.name for p in Path(out).iterdir()) == [
        ".plksr-prepare.json",
        "1.png",
    ]
    assert build_once(out, {"v": 2}, build)  # other settings: rebuilt, the old output replaced
    assert sorted(p.name for p in Path(out).iterdir()) == [".plksr-prepare.json", "2.png"]

    def killed(folder: str) -> None:
        Path(folder).mkdir()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_once(out, {"v": 3}, killed)
    assert sorted(p.name for p in Path(out).iterdir()) == [".plksr-prepare.json", "2.png"]  # untouched


def test_prepare_real_again_skips_and_keeps_one_meta_line_per_image(tmp_path) -> None:
    root, _ = make_hr(tmp_path / "in", 2, size=96)
    first = prepare_real(str(root / "hr"), str(tmp_path / "out"), "T", size=64, step=32)
    lines = Path(first["meta_info"]).read_text().splitlines()
    stamp = (tmp_path / "out" / "T_HR_sub" / ".plksr-prepare.json").stat().st_mtime_ns
    prepare_real(str(root / "hr"), str(tmp_path / "out"), "T", size=64, step=32)
    assert Path(first["meta_info"]).read_text().splitlines() == lines and len(lines) == len(set(lines)) == 8
    assert (tmp_path / "out" / "T_HR_sub" / ".plksr-prepare.json").stat().st_mtime_ns == stamp
