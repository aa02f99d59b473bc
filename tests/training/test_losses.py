"""models/losses.py: PLKSRPerceptualLoss is BasicSR's PerceptualLoss with the VGG file as an argument."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ..conftest import tiny_vgg


@pytest.mark.parametrize("criterion", ["l1", "fro"])
def test_perceptual_loss_equals_basicsrs_with_the_same_vgg_file(tmp_path: Path, monkeypatch, criterion: str) -> None:
    """BasicSR's loss reads `experiments/pretrained_models/vgg19-dcbb9e9d.pth` under the working directory; ours the
    file it is given, elsewhere. Same layers, same weights: the same perceptual and style losses."""
    from basicsr.losses.basic_loss import PerceptualLoss

    from plksr_arch.training.models.losses import PLKSRPerceptualLoss

    (tmp_path / "weights").mkdir()
    vgg = tiny_vgg(tmp_path / "weights" / "vgg.pth")
    basicsr_place = tmp_path / "experiments" / "pretrained_models" / "vgg19-dcbb9e9d.pth"
    basicsr_place.parent.mkdir(parents=True)
    basicsr_place.write_bytes(vgg.read_bytes())
    monkeypatch.chdir(tmp_path)
    layers = {"conv1_2": 0.1, "conv3_4": 1.0, "conv5_4": 1.0}
    kwargs = {"layer_weights": layers, "perceptual_weight": 1.0, "style_weight": 0.5, "criterion": criterion}
    theirs = PerceptualLoss(**kwargs)
    ours = PLKSRPerceptualLoss(**kwargs, vgg_weights=str(vgg))
    assert [type(m) for m in ours.vgg.vgg_net] == [type(m) for m in theirs.vgg.vgg_net]
    x, gt = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    for a, b in zip(ours(x, gt), theirs(x, gt), strict=True):
        torch.testing.assert_close(a, b)
    assert not any(p.requires_grad for p in ours.vgg.parameters())


def test_perceptual_loss_errors_name_what_is_wrong(tmp_path: Path) -> None:
    from plksr_arch.training.models.losses import PLKSRPerceptualLoss

    with pytest.raises(FileNotFoundError, match=r"missing\.pth: no such VGG weights file"):
        PLKSRPerceptualLoss({"conv5_4": 1.0}, vgg_weights=str(tmp_path / "missing.pth"))
    vgg = str(tiny_vgg(tmp_path / "vgg.pth"))
    with pytest.raises(ValueError, match="layer_weights: 'conv9_9' is not a layer of vgg19"):
        PLKSRPerceptualLoss({"conv9_9": 1.0}, vgg_weights=vgg)
    with pytest.raises(ValueError, match="criterion: 'l3' is not one of l1, l2, fro"):
        PLKSRPerceptualLoss({"conv5_4": 1.0}, criterion="l3", vgg_weights=vgg)
