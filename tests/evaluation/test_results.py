"""Validation returns data: DatasetResult / ImageResult, serialised into metrics.json entries."""

from __future__ import annotations

import pytest

from plksr_arch.evaluation.results import DatasetResult, ImageResult

from ..conftest import make_pairs, metrics, train_options, write_yaml


def test_dataset_result_means_and_json_entry() -> None:
    images = [
        ImageResult("a", {"psnr": 30.0, "ssim": 0.8}, {"psnr": 29.0, "ssim": 0.7}),
        ImageResult("b", {"psnr": 32.0, "ssim": 0.9}, {"psnr": 30.0, "ssim": 0.8}),
    ]
    result = DatasetResult("Set2", images, seconds=4.0, network_seconds=1.0, metric_names=("psnr", "ssim"))
    assert result.means == {"psnr": 31.0, "ssim": pytest.approx(0.85)}
    assert result.bicubic_means == {"psnr": 29.5, "ssim": pytest.approx(0.75)}
    entry = result.as_dict(reference={"psnr": 31.5})
    assert list(entry) == ["psnr", "ssim", "n_images", "seconds", "images_per_second", "bicubic", "reference", "images"]
    assert entry["images_per_second"] == 0.5 and entry["images"][1] == {
        "name": "b",
        **images[1].metrics,
        "bicubic": images[1].bicubic,
    }
    bare = DatasetResult("x", [ImageResult("c")], 1.0, 0.5)  # no ground truth: no means, no baseline
    assert bare.as_dict() == {"n_images": 1, "seconds": 1.0, "images_per_second": 1.0, "images": [{"name": "c"}]}


def test_validation_returns_results_and_calls_the_hook_per_image(tmp_path) -> None:
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.models import build_model

    from plksr_arch.training.options import load_options

    val = make_pairs(tmp_path / "val", 3, 2)
    opt = load_options(
        str(write_yaml(tmp_path / "o.yml", train_options(make_pairs(tmp_path / "d", 2, 2), val=val))),
        is_train=True,
        root=str(tmp_path),
    )
    model = build_model(opt)
    dataset_opt = {**opt["datasets"]["val_1"], "phase": "val", "scale": 2}
    loader = build_dataloader(build_dataset(dataset_opt), dataset_opt, num_gpu=0, dist=False, sampler=None)
    seen = []

    def hook(name, lq, sr, gt, scores) -> dict:
        seen.append((name, tuple(lq.shape), sr.shape, gt.shape, set(scores)))
        return {"psnr": 1.0, "ssim": 0.1}

    result = model.validation(loader, 7, None, save_img=False, on_image=hook)
    assert isinstance(result, DatasetResult) and result.name == "tiny_val"
    assert sorted(i.name for i in result.images) == ["img000", "img001", "img002"]  # in BasicSR's folder order
    assert [s[0] for s in seen] == [i.name for i in result.images]
    assert all(s[1:] == ((3, 24, 24), (48, 48, 3), (48, 48, 3), set(metrics(2))) for s in seen)
    assert result.bicubic_means == {"psnr": 1.0, "ssim": pytest.approx(0.1)}
    assert model.metric_results == result.means and set(result.means) == set(metrics(2))
    assert not hasattr(model, "image_results") and not hasattr(model, "timing")
