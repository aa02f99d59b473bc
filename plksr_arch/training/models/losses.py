"""PLKSRPerceptualLoss: BasicSR's PerceptualLoss with the VGG weights file as an argument.

BasicSR's VGGFeatureExtractor loads its ImageNet weights from one module-level path relative to the working directory
(`basicsr.archs.vgg_arch.VGG_PRETRAIN_PATH`) and downloads them when that file is missing (a hang offline). Here the
file is the `vgg_weights` argument, read with `weights.read.read_torch_file` (weights_only); nothing is downloaded and
no BasicSR global is read or changed. Layers, normalisation, criteria and `forward` are BasicSR's.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torchvision.models
from basicsr.archs.vgg_arch import NAMES, VGGFeatureExtractor, insert_bn
from basicsr.losses.basic_loss import PerceptualLoss
from torch import nn

from plksr_arch.training.basicsr_keys import vgg_weights as default_vgg_weights
from plksr_arch.weights.read import read_torch_file

CRITERIA = {"l1": nn.L1Loss, "l2": nn.MSELoss, "fro": None}  # BasicSR's `l2` names a class torch lacks


class VGGFeatures(VGGFeatureExtractor):
    """BasicSR's VGG feature extractor (frozen, up to the deepest layer asked for, max-pooling of stride 2) with its
    weights read from `weights`."""

    def __init__(
        self, weights: str, layer_name_list: list[str], vgg_type: str, use_input_norm: bool, range_norm: bool
    ) -> None:
        nn.Module.__init__(self)
        self.layer_name_list, self.use_input_norm, self.range_norm = layer_name_list, use_input_norm, range_norm
        names = NAMES[vgg_type.replace("_bn", "")]
        self.names = insert_bn(names) if "bn" in vgg_type else names
        unknown = [name for name in layer_name_list if name not in self.names]
        if unknown:
            raise ValueError(f"layer_weights: {unknown[0]!r} is not a layer of {vgg_type}")
        network = getattr(torchvision.models, vgg_type)(weights=None)
        network.load_state_dict(read_torch_file(weights, "VGG weights"))
        deepest = max(self.names.index(name) for name in layer_name_list)
        layers = zip(self.names, network.features[: deepest + 1], strict=False)
        self.vgg_net = nn.Sequential(
            OrderedDict(
                (name, nn.MaxPool2d(kernel_size=2, stride=2) if "pool" in name else layer) for name, layer in layers
            )
        )
        self.vgg_net.eval().requires_grad_(False)
        if use_input_norm:  # ImageNet statistics for images in [0, 1]
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))


class PLKSRPerceptualLoss(PerceptualLoss):
    """Perceptual (and style) loss on VGG features, as BasicSR's PerceptualLoss, with the VGG weights file given:
    `vgg_weights` (default: BasicSR's `experiments/pretrained_models/<torchvision's file name>`, relative to the
    working directory)."""

    def __init__(
        self,
        layer_weights: dict[str, float],
        vgg_type: str = "vgg19",
        use_input_norm: bool = True,
        range_norm: bool = False,
        perceptual_weight: float = 1.0,
        style_weight: float = 0.0,
        criterion: str = "l1",
        vgg_weights: str | None = None,
    ) -> None:
        nn.Module.__init__(self)
        if criterion not in CRITERIA:
            raise ValueError(f"criterion: {criterion!r} is not one of {', '.join(CRITERIA)}")
        self.perceptual_weight, self.style_weight, self.layer_weights = perceptual_weight, style_weight, layer_weights
        path = vgg_weights or default_vgg_weights({"vgg_type": vgg_type})[0]
        self.vgg = VGGFeatures(path, list(layer_weights), vgg_type, use_input_norm, range_norm)
        self.criterion_type = criterion
        self.criterion = CRITERIA[criterion]() if CRITERIA[criterion] else None
