"""The bicubic baseline of metrics.json reproduces the published MATLAB-bicubic numbers (needs ../shared data)."""

from __future__ import annotations

import pytest

from ..conftest import BENCHMARKS, metrics

PUBLISHED_SET5 = {2: 33.66, 3: 30.39, 4: 28.42}  # PSNR (Y, crop_border = scale), the SR literature's bicubic row


@pytest.mark.skipif(not (BENCHMARKS / "Set5").is_dir(), reason="../shared/data/benchmarks/Set5 is absent")
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_baseline_matches_published_set5(scale: int) -> None:
    from basicsr.data import build_dataset

    from plksr_arch.test import bicubic_metrics

    dataset = build_dataset(
        {
            "name": "Set5",
            "type": "PairedImageDataset",
            "dataroot_gt": str(BENCHMARKS / "Set5" / "GTmod12"),
            "dataroot_lq": str(BENCHMARKS / "Set5" / f"LRbicx{scale}"),
            "filename_tmpl": "{}",
            "io_backend": {"type": "disk"},
            "phase": "test",
            "scale": scale,
        }
    )
    result = bicubic_metrics(dataset, metrics(scale), scale)
    assert result["psnr"] == pytest.approx(PUBLISHED_SET5[scale], abs=0.03)
    assert 0.8 < result["ssim"] < 0.96
