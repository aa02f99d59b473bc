"""The bicubic baseline of metrics.json reproduces the published MATLAB-bicubic numbers (needs ../shared data)."""

from __future__ import annotations

import pytest

from ..conftest import bicubic_means, metrics, shared

# PSNR (Y, crop_border = scale) of the SR literature's bicubic rows, and how close BasicSR's scoring comes: Set14's
# greyscale `bridge` is read as RGB and scored on its Y (see plksr_arch.evaluation.metrics), hence the wider margin.
PUBLISHED = {"Set5": ({2: 33.66, 3: 30.39, 4: 28.42}, 0.03), "Set14": ({2: 30.24, 3: 27.55, 4: 26.00}, 0.12)}


@pytest.mark.parametrize("name", ["Set5", "Set14"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_baseline_matches_published(name: str, scale: int) -> None:
    root = shared(f"data/benchmarks/{name}")
    from basicsr.data import build_dataset

    dataset = build_dataset(
        {
            "name": name,
            "type": "PairedImageDataset",
            "dataroot_gt": str(root / "GTmod12"),
            "dataroot_lq": str(root / f"LRbicx{scale}"),
            "filename_tmpl": "{}",
            "io_backend": {"type": "disk"},
            "phase": "test",
            "scale": scale,
        }
    )
    result = bicubic_means(dataset, metrics(scale), scale)
    published, tolerance = PUBLISHED[name]
    assert result["psnr"] == pytest.approx(published[scale], abs=tolerance)
    assert 0.65 < result["ssim"] < 0.96
