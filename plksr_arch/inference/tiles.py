"""x8 geometric self-ensemble and tiled forward passes with feathered overlap.

Both wrap any `fn(lq) -> sr` on NCHW tensors, so validation, testing and `Upscaler` share them; `check_tiling` is
the one rule for `tile`/`overlap` values (option files and `Upscaler` call it). torch only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from plksr_arch.errors import UserError

Forward = Callable[[torch.Tensor], torch.Tensor]


def self_ensemble(fn: Forward, x: torch.Tensor) -> torch.Tensor:
    """Mean of `fn` over the eight flips/rotations of `x`, each output transformed back (Lim et al., EDSR's x8)."""
    total = None
    for flip in (False, True):
        xf = x.flip(-1) if flip else x
        for k in range(4):
            y = torch.rot90(fn(torch.rot90(xf, k, (-2, -1))).float(), -k, (-2, -1))
            y = y.flip(-1) if flip else y
            total = y if total is None else total + y
    return total / 8


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering `length` with at least `overlap` shared pixels."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    return [*range(0, length - tile, stride), length - tile]


def _ramp(size: int, ramp_in: int, ramp_out: int) -> torch.Tensor:
    """1-D blending weight: rises over `ramp_in` pixels, 1 in the middle, falls over the last `ramp_out` pixels."""
    w = torch.ones(size)
    if ramp_in:
        w[:ramp_in] = (torch.arange(ramp_in) + 0.5) / ramp_in
    if ramp_out:
        w[size - ramp_out :] = torch.minimum(w[size - ramp_out :], (torch.arange(ramp_out, 0, -1) - 0.5) / ramp_out)
    return w


def check_tiling(tile: int | None, overlap: int) -> None:
    """Raise ValueError naming the argument when `tile`/`overlap` cannot tile an image."""
    if tile is None:
        return
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 8:
        raise UserError(f"tile: {tile!r} must be an int >= 8 (LR pixels) or null")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < tile // 2:
        raise UserError(f"tile_overlap: {overlap!r} must be an int with 0 <= overlap < tile / 2 ({tile // 2})")


def _axis_ramps(starts: list[int], size: int, scale: int) -> list[torch.Tensor]:
    """The blending ramp of each tile along one axis (output pixels): it rises over the pixels shared with the
    previous tile and falls over those shared with the next."""
    last = len(starts) - 1
    return [
        _ramp(
            size * scale,
            (starts[i - 1] + size - start) * scale if i else 0,
            (start + size - starts[i + 1]) * scale if i < last else 0,
        )
        for i, start in enumerate(starts)
    ]


def tiled_forward(fn: Forward, x: torch.Tensor, scale: int, tile: int, overlap: int) -> torch.Tensor:
    """`fn(x)` computed on `tile` x `tile` LR tiles sharing `overlap` pixels, blended with linear ramps (fp32).

    Ramps run over the shared pixels only and stay 1 at the image border, so a tile's edge, where its convolutions
    saw zero padding instead of the neighbouring pixels, weighs least. Memory grows with the tile, not the image.
    """
    check_tiling(tile, overlap)
    height, width = x.shape[-2:]
    th, tw = min(tile, height), min(tile, width)
    tops, lefts = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    ramps_h, ramps_w = _axis_ramps(tops, th, scale), _axis_ramps(lefts, tw, scale)
    out = weight = None
    for top, ramp_h in zip(tops, ramps_h, strict=True):
        for left, ramp_w in zip(lefts, ramps_w, strict=True):
            y = fn(x[..., top : top + th, left : left + tw]).float()
            if out is None:
                out = y.new_zeros((*y.shape[:-2], height * scale, width * scale))
                weight = y.new_zeros((height * scale, width * scale))
            w = (ramp_h[:, None] * ramp_w[None, :]).to(y.device)
            rows, cols = slice(top * scale, (top + th) * scale), slice(left * scale, (left + tw) * scale)
            out[..., rows, cols] += y * w
            weight[rows, cols] += w
    return out / weight
