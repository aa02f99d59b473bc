"""Reference files of published results and the released-variant keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from plksr_arch import PLKSR, PRESETS, plksr, plksr_tiny
from plksr_arch.evaluation.references import (
    ReferenceFileError,
    dataset_id,
    load_references,
    lookup,
    released_key,
    released_variant,
    train_set,
)

from ..conftest import TINY_NET


def test_released_variant_and_key() -> None:
    for name, preset in PRESETS.items():
        assert released_variant({"type": "PLKSR", **preset, "upscaling_factor": 3}) == name
    assert released_variant({"type": "PLKSR", "upscaling_factor": 4}) == "PLKSR"  # defaults = PLKSR
    assert released_variant(plksr_tiny(2)) == "PLKSR-tiny" and released_variant(plksr(3)) == "PLKSR"  # built networks
    assert released_variant(PLKSR(dim=32, upscaling_factor=4)) is None
    assert released_variant({**TINY_NET, "upscaling_factor": 2}) is None
    assert released_variant({"type": "SwinIR"}) is None
    assert train_set("train_PLKSR_DF2K_x4", None) == "DF2K"
    assert train_set("x", "/w/PLKSR_tiny_DIV2K_x2.pth") == "DIV2K"
    assert train_set("mine", None) == "DIV2K"
    opt = {"name": "t", "scale": 4, "network_g": {"type": "PLKSR", **PRESETS["PLKSR-tiny"], "upscaling_factor": 4}}
    opt["path"] = {"pretrain_network_g": "weights/PLKSR_tiny_DF2K_x4.pth"}
    assert released_key(opt) == "PLKSR-tiny_DF2K_x4"


def test_reference_files(tmp_path: Path) -> None:
    good = tmp_path / "refs.yml"
    good.write_text("M_x2:\n  source: a paper\n  Set5: {psnr: 38.0, ssim: 0.96}\n  BSD100: {psnr: 32.1}\n")
    refs = load_references(str(good))
    assert lookup(refs, "M_x2", "set5") == {"psnr": 38.0, "ssim": 0.96}
    assert lookup(refs, "M_x2", "B100") == {"psnr": 32.1}
    assert lookup(refs, "M_x2", "Urban100") is None and lookup(refs, "other", "Set5") is None
    assert dataset_id("BSDS100") == dataset_id("b100")
    bad = tmp_path / "bad.yml"
    bad.write_text("M_x2:\n  Set5: {psnr: high}\n")
    with pytest.raises(ReferenceFileError, match=r"bad.yml: M_x2.Set5: expected a mapping of metric names"):
        load_references(str(bad))
    with pytest.raises(ReferenceFileError, match="no such reference file"):
        load_references(str(tmp_path / "none.yml"))
