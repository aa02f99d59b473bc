"""RealPLKSR: the community's PLKSR for real-world degradations (neosr, traiNNer-redux, spandrel/chaiNNer).

PLKSR's blocks with four changes: Mish instead of GELU in the DCCM, GroupNorm after each block's refine conv (or, in
the LayerNorm variant, a channels-first LayerNorm at the block input), a Dropout2d before the last conv, and
optionally DySample (a learned point-sampling upsampler) instead of PixelShuffle. Parameter names follow those
implementations (`channel_mixer`, correctly spelled; the tail conv is `feats.{n_blocks + 2}`), so their checkpoints
load with `strict=True`. Reads top-down: norms -> DCCM (Mish) -> block -> DySample -> RealPLKSR.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plksr_arch.archs.plksr_arch import (
    EA,
    GlobalSkipSR,
    PLKConv2d,
    _init_weight,
    inference_inplace,
    residual,
    shared_checks,
    store_hyperparameters,
    validate,
)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an NCHW map (eps 1e-6), statistics in fp32."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            y = x.float()
            mean = y.mean(1, keepdim=True)
            var = (y - mean).pow(2).mean(1, keepdim=True)
            y = (y - mean) / torch.sqrt(var + self.eps)
            y = self.weight.float()[:, None, None] * y + self.bias.float()[:, None, None]
        return y.to(x.dtype)


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in fp32 whatever the autocast dtype, then cast back: fp16 statistics overflow on bright
    large maps, the known cause of black frames from fp16 RealPLKSR in other tools."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            y = F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps)
        return y.to(x.dtype)


class Mish(nn.Mish):
    """Mish that overwrites its input under `inference_inplace()` (the DCCM's fresh conv output)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.mish(x, inplace=inference_inplace())


class MishDCCM(nn.Sequential):
    """Doubled Convolutional Channel Mixer (DCCM) with Mish: 3x3 conv to 2*dim, Mish, 3x3 conv back to dim."""

    def __init__(self, dim: int) -> None:
        super().__init__(nn.Conv2d(dim, dim * 2, 3, 1, 1), Mish(), nn.Conv2d(dim * 2, dim, 3, 1, 1))
        _init_weight(self[-1])


class RealPLKBlock(nn.Module):
    """RealPLKSR block: `x + norm(refine(EA(PLKC(DCCM(layer_norm(x))))))`; exactly one of `layer_norm` (LayerNorm
    variant) and `norm` (GroupNorm) is an identity."""

    def __init__(
        self, dim: int, kernel_size: int, split_ratio: float, use_ea: bool, norm_groups: int, layer_norm: bool
    ) -> None:
        super().__init__()
        self.layer_norm = LayerNorm2d(dim) if layer_norm else nn.Identity()
        self.channel_mixer = MishDCCM(dim)
        self.lk = PLKConv2d(int(dim * split_ratio), kernel_size)
        self.attn = EA(dim) if use_ea else nn.Identity()
        self.refine = nn.Conv2d(dim, dim, 1, 1, 0)
        _init_weight(self.refine)
        self.norm = nn.Identity() if layer_norm else GroupNorm32(norm_groups, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return residual(x, self.norm(self.refine(self.attn(self.lk(self.channel_mixer(self.layer_norm(x)))))))


class DySample(nn.Module):
    """DySample upsampler ("Learning to Upsample by Learning to Sample", Liu et al. 2023): each output pixel
    bilinearly samples the input at a learned offset from its nearest-neighbour source point.

    The `in_channels` are split into `groups` that share offsets; a 1x1 `offset` conv, gated by a 1x1 `scope` conv
    (sigmoid, x0.5), predicts 2 coordinates per group and sub-pixel; `init_pos` holds the sub-pixel centres. With
    `end_conv` a 1x1 conv maps the sampled `in_channels` to `out_channels`.
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int, groups: int, end_conv: bool) -> None:
        super().__init__()
        if in_channels % groups:
            raise ValueError(f"DySample: in_channels={in_channels} is not a multiple of groups={groups}")
        self.scale, self.groups = scale, groups
        if end_conv:
            self.end_conv = nn.Conv2d(in_channels, out_channels, 1)
        self.offset = nn.Conv2d(in_channels, 2 * groups * scale**2, 1)
        self.scope = nn.Conv2d(in_channels, 2 * groups * scale**2, 1, bias=False)
        _init_weight(self.offset)
        nn.init.zeros_(self.scope.weight)
        self.register_buffer("init_pos", self._sub_pixel_centres())

    def _sub_pixel_centres(self) -> torch.Tensor:
        """(1, 2 * groups * s^2, 1, 1): for each group the (x, y) offsets of the s x s sub-pixel centres from the
        pixel centre, in input pixels; x-coordinates first, each in row-major sub-pixel order."""
        s = self.scale
        steps = (torch.arange(s, dtype=torch.float32) - (s - 1) / 2) / s
        ys, xs = torch.meshgrid(steps, steps, indexing="ij")
        centres = torch.stack([xs, ys])  # (2, s, s)
        return centres.repeat(1, self.groups, 1).reshape(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s, g = self.scale, self.groups
        offset = self.offset(x) * self.scope(x).sigmoid() * 0.5 + self.init_pos
        grid_y, grid_x = torch.meshgrid(
            torch.arange(h, device=x.device, dtype=x.dtype) + 0.5,
            torch.arange(w, device=x.device, dtype=x.dtype) + 0.5,
            indexing="ij",
        )
        base = torch.stack([grid_x, grid_y]).view(1, 2, 1, h, w)
        size = torch.tensor([w, h], device=x.device, dtype=x.dtype).view(1, 2, 1, 1, 1)
        coords = 2 * (base + offset.view(b, 2, -1, h, w)) / size - 1  # grid_sample's [-1, 1]
        coords = F.pixel_shuffle(coords.reshape(b, -1, h, w), s).view(b, 2, g, s * h, s * w)
        coords = coords.permute(0, 2, 3, 4, 1).reshape(b * g, s * h, s * w, 2)
        out = F.grid_sample(
            x.reshape(b * g, c // g, h, w), coords, mode="bilinear", padding_mode="border", align_corners=False
        ).view(b, c, s * h, s * w)
        return self.end_conv(out) if hasattr(self, "end_conv") else out


class RealPLKSR(GlobalSkipSR):
    """RealPLKSR: `feats = conv3x3(3 -> dim), RealPLKBlock x n_blocks, Dropout2d, conv3x3(dim -> 3 * s * s)`, output
    `to_img(feats(x) + repeat_interleave(x, s * s))` with `to_img` PixelShuffle or DySample.

    Args:
        dim: feature channels.
        n_blocks: number of blocks.
        upscaling_factor: output scale s.
        kernel_size: large kernel size k of PLKC (odd).
        split_ratio: fraction of channels the large kernel sees.
        use_ea: use Element-wise Attention (EA).
        norm_groups: groups of each block's GroupNorm (unused with `layer_norm`).
        dropout: Dropout2d probability before the last conv (training only).
        dysample: DySample instead of PixelShuffle (groups 4 for even scales, else 3; 1x1 end conv unless s = 1).
        layer_norm: a channels-first LayerNorm at each block's input instead of the GroupNorm after it.
    """

    @store_hyperparameters
    def __init__(
        self,
        *,
        dim: int = 64,
        n_blocks: int = 28,
        upscaling_factor: int = 4,
        kernel_size: int = 17,
        split_ratio: float = 0.25,
        use_ea: bool = True,
        norm_groups: int = 4,
        dropout: float = 0.0,
        dysample: bool = False,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        checks = shared_checks(dim, n_blocks, upscaling_factor, kernel_size, split_ratio)
        checks += [
            (
                "norm_groups",
                norm_groups,
                lambda: layer_norm or (isinstance(norm_groups, int) and norm_groups >= 1 and dim % norm_groups == 0),
                f"a positive divisor of dim={dim}",
            ),
            ("dropout", dropout, lambda: isinstance(dropout, (int, float)) and 0 <= dropout < 1, "in [0, 1)"),
        ]
        validate("RealPLKSR", checks)
        self.upscaling_factor = upscaling_factor
        head = nn.Conv2d(3, dim, 3, 1, 1)
        blocks = [RealPLKBlock(dim, kernel_size, split_ratio, use_ea, norm_groups, layer_norm) for _ in range(n_blocks)]
        tail = nn.Conv2d(dim, 3 * upscaling_factor**2, 3, 1, 1)
        self.feats = nn.Sequential(head, *blocks, nn.Dropout2d(dropout), tail)
        _init_weight(head)
        _init_weight(tail)
        if dysample:
            groups = 4 if upscaling_factor % 2 == 0 else 3
            self.to_img: nn.Module = DySample(
                3 * upscaling_factor**2, 3, upscaling_factor, groups, end_conv=upscaling_factor != 1
            )
        else:
            self.to_img = nn.PixelShuffle(upscaling_factor)


def realplksr(scale: int = 4, **kwargs: Any) -> RealPLKSR:
    """RealPLKSR as neosr and traiNNer-redux ship it (dim 64, 28 blocks, k 17, EA, GroupNorm 4, PixelShuffle)."""
    return RealPLKSR(upscaling_factor=scale, **kwargs)
