"""The test pipeline (plksr_arch.training.test_pipeline): consistent reports, reference selection."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from plksr_arch import PLKSR, PRESETS
from plksr_arch.evaluation.references import ReferenceFileError
from plksr_arch.evaluation.strips import strip_size

from ..conftest import REPO, TINY_NET, bicubic_means, make_pairs, metrics, paired_dataset, write_yaml


def _tiny(scale: int = 2) -> PLKSR:
    return PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=scale).eval()


def test_test_run_writes_consistent_reports(tmp_path: Path, monkeypatch) -> None:
    """A fixed random-weight checkpoint: per-image and mean metrics, bicubic, reference delta, md/csv, strips."""
    from plksr_arch.training.options import load_options
    from plksr_arch.training.test_pipeline import test

    data = make_pairs(tmp_path / "val", 3, 2, size=48, seed=3)
    weights = tmp_path / "w.pth"
    torch.save({"params_ema": _tiny().state_dict()}, weights)
    refs = tmp_path / "refs.yml"
    refs.write_text("Mine:\n  source: my paper\n  tiny val: {psnr: 20.0, ssim: 0.5}\n")
    opt = {
        "name": "t",
        "model_type": "PLKSRModel",
        "scale": 2,
        "num_gpu": 0,
        "datasets": {"test_1": paired_dataset("tiny_val", data)},
        "network_g": {**TINY_NET, "upscaling_factor": 2},
        "path": {"pretrain_network_g": str(weights), "param_key_g": "params_ema", "strict_load_g": True},
        "val": {
            "save_img": True,
            "self_ensemble": True,
            "tile": 16,
            "tile_overlap": 4,
            "reference": "Mine",
            "reference_file": str(refs),
            "metrics": metrics(2),
        },
    }
    monkeypatch.chdir(tmp_path)
    report = test(load_options(str(write_yaml(tmp_path / "t.yml", opt)), is_train=False))
    saved = json.loads((tmp_path / "results" / "t" / "metrics.json").read_text())
    assert saved == report
    assert report["reference"] == {"key": "Mine", "source": "my paper"}
    assert report["settings"] == {"self_ensemble": True, "tile": 16, "tile_overlap": 4, "use_amp": False}
    entry = report["datasets"]["tiny_val"]
    assert entry["n_images"] == 3 and len(entry["images"]) == 3
    for metric in ("psnr", "ssim"):
        assert entry[metric] == pytest.approx(np.mean([i[metric] for i in entry["images"]]))
    assert entry["reference"] == {"psnr": 20.0, "ssim": 0.5}
    from basicsr.data import build_dataset

    dataset = build_dataset({**paired_dataset("v", data), "phase": "test", "scale": 2})
    assert entry["bicubic"] == pytest.approx(bicubic_means(dataset, metrics(2), 2))
    md = (tmp_path / "results" / "t" / "metrics.md").read_text()
    assert md.startswith("t: custom network x2; test-time: self_ensemble, tile 16/4; reference: Mine (my paper)")
    delta = entry["psnr"] - 20.0
    assert f"| 20.00 | 0.5000 | {delta:+.2f} |" in md
    csv_rows = (tmp_path / "results" / "t" / "metrics.csv").read_text().splitlines()
    assert len(csv_rows) == 2 and csv_rows[1].startswith(f"tiny_val,3,{entry['psnr']:.2f},")
    strips = sorted((tmp_path / "results" / "t" / "visualization" / "tiny_val").glob("*_strip.png"))
    assert len(strips) == 3 and all(cv2.imread(str(s)).shape == (*strip_size(), 3) for s in strips)


def test_reference_for_auto_explicit_and_missing(tmp_path: Path) -> None:
    from plksr_arch.training.test_pipeline import reference_for

    refs = tmp_path / "refs.yml"
    refs.write_text("PLKSR-tiny_DF2K_x4:\n  source: s\n  Set5: {psnr: 32.0}\nOther_x4:\n  Set5: {psnr: 31.0}\n")
    net = {"type": "PLKSR", **PRESETS["PLKSR-tiny"], "upscaling_factor": 4}
    opt = {"name": "test_PLKSR-tiny_DF2K_x4", "scale": 4, "network_g": net, "path": {}}
    opt["val"] = {"reference_file": str(refs)}
    assert reference_for(opt)[0] == "PLKSR-tiny_DF2K_x4"
    opt["name"] = "test_PLKSR-tiny_DIV2K_x4"
    assert reference_for(opt) == (None, {})  # the file has no DIV2K row: no reference, no error
    opt["val"]["reference"] = "Other_x4"
    assert reference_for(opt)[0] == "Other_x4"
    opt["val"]["reference"] = "Nope"
    with pytest.raises(ReferenceFileError, match=r"refs.yml: val.reference: 'Nope' is not in the file"):
        reference_for(opt)
    assert reference_for({**opt, "val": {"reference_file": None}}) == (None, {})


@pytest.mark.parametrize("variant", ["PLKSR", "PLKSR-tiny"])
@pytest.mark.parametrize("data", ["DIV2K", "DF2K"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_released_configurations_get_the_paper_row_without_options(variant: str, data: str, scale: int) -> None:
    """Every shipped test option file names its network's row of the packaged paper tables by default."""
    from plksr_arch.evaluation import paper
    from plksr_arch.training.options import read_yaml
    from plksr_arch.training.test_pipeline import reference_for

    opt = read_yaml(str(REPO / "options" / "test" / f"test_{variant}_{data}_x{scale}.yml"))
    key, references = reference_for(opt)
    assert key == f"{variant}_{data}_x{scale}" and references is paper.results()
    assert set(references[key]) == {"source", *paper.DATASETS}
