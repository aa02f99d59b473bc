"""`Upscaler`: load a network once, then upscale images with the device and precision policy of `runtime`, the
accelerated routes of `runtime.accel`, a compiled or mixed-precision forward, self-ensemble and tiles.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from torch import nn

from plksr_arch.errors import UserError
from plksr_arch.inference.tiles import check_tiling, tiled_forward
from plksr_arch.runtime.accel import accelerate
from plksr_arch.runtime.device import autocast_dtype, inference_memory_format, resolve_device, resolve_precision

if TYPE_CHECKING:
    from plksr_arch.inference.video import VideoRun
    from plksr_arch.inference.video_formats import VideoSettings

logger = logging.getLogger("plksr")


# Bytes per LR pixel assumed for a network without an `activation_bytes_per_pixel` of its own: 1.6x PLKSR x4's fp32
# estimate, so `tile="auto"` tiles early rather than running out of memory.
UNKNOWN_BYTES_PER_PIXEL = 4096


def mixed_precision_forward(net: nn.Module, x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """`net(x)` with fp32 out in `dtype` (None: fp32): a network with `mixed_forward` (PLKSR) keeps its global skip in
    fp32 itself; any other runs whole under autocast."""
    if hasattr(net, "mixed_forward"):
        return net.mixed_forward(x, dtype)
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        return net(x).float()


class _MixedPass(nn.Module):
    """One inference pass of `net` with its body in `dtype` (see `mixed_precision_forward`), as a module
    that `torch.compile` can freeze."""

    def __init__(self, net: nn.Module, dtype: torch.dtype | None) -> None:
        super().__init__()
        self.net, self.dtype = net, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mixed_precision_forward(self.net, x, self.dtype)


class CompiledForward:
    """`torch.compile` of a network's inference pass in one precision, one graph per input shape.

    CPU: inductor with weight freezing, so convolutions become oneDNN kernels with fused post-ops. CUDA:
    `mode="reduce-overhead"` (CUDA graphs; outputs are cloned, as a graph's output buffer is reused by its next
    replay). The first call of each input shape compiles; its time is kept in `warmups` and logged. Meant for
    inputs of one size (video frames, a bench): each new size compiles again.
    """

    def __init__(self, net: nn.Module, precision: str, device: torch.device) -> None:
        self.device = device
        mode = "reduce-overhead" if device.type == "cuda" else None
        self._compiled = torch.compile(_MixedPass(net, autocast_dtype(precision)), mode=mode, dynamic=False)
        self.warmups: dict[tuple[int, ...], float] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch._inductor.config as inductor_config

        shape = tuple(x.shape)
        tick = time.perf_counter()
        with inductor_config.patch(freezing=True):
            y = self._compiled(x)
        if self.device.type == "cuda":
            y = y.clone()
        if shape not in self.warmups:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.warmups[shape] = time.perf_counter() - tick
            logger.info(f"torch.compile for input {'x'.join(map(str, shape))}: {self.warmups[shape]:.1f} s")
        return y


def available_memory(device: torch.device) -> int:
    """Free bytes for activations: CUDA's free memory, or the CPU's MemAvailable (Linux) / physical memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class Upscaler:
    """Upscale numpy images with a PLKSR (or any `x -> x*scale` network) at the device's fastest safe precision.

    `upscaler(img)` takes an HxW or HxWxC image (uint8 or uint16, C = 1, 3 or 4, RGB(A) order) and returns the upscaled
    image with the same dtype and channel layout: grey is run as RGB and averaged back, alpha is upscaled apart with
    bicubic interpolation. Under fp16/bf16 the network body runs in low precision while the global skip (the
    repeated input) is added in fp32, so precision costs no PSNR; a non-finite output (per tile) is redone in fp32
    and logged. `tile` (LR pixels) bounds memory; `"auto"` picks the largest tile that fits half the free memory.
    `arch_options` are constructor arguments for a weights file that does not store them (`load_model`'s keywords,
    e.g. `{"norm_groups": 8}`).

    Speed (see `accel`): the network runs in `inference_memory_format` (channels_last on CPUs); `large_kernel`
    picks the PLKC route (`auto`: the faster of direct and spectral, measured here; `direct`; `spectral`);
    `compile=True` compiles the pass once per input size (worth it for many inputs of one size, e.g. video
    frames; the compile time is logged and kept in `warmups`). The upscaler works on its own copy of a given model.
    """

    def __init__(
        self,
        model_or_path: nn.Module | str,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | str | None = None,
        tile_overlap: int = 16,
        large_kernel: str = "auto",
        compile: bool = False,
        *,
        arch_options: Mapping[str, Any] | None = None,
    ) -> None:
        from plksr_arch.weights.read import load_model

        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        if tile != "auto":
            check_tiling(tile, tile_overlap)
        self.tile, self.tile_overlap = tile, tile_overlap
        if isinstance(model_or_path, str):
            model = load_model(model_or_path, **(arch_options or {}))
        elif arch_options:
            raise UserError("arch_options: only for weights files (a built model has its arguments)")
        else:
            model = copy.deepcopy(model_or_path)
        hyperparameters = getattr(model, "hyperparameters", {})
        self.scale: int = int(hyperparameters.get("upscaling_factor") or getattr(model, "upscale", 0))
        if self.scale < 1:
            raise UserError("model: cannot tell its scale (no `hyperparameters['upscaling_factor']` or `upscale`)")
        self.memory_format = inference_memory_format(self.precision, self.device)
        self.model = model.to(self.device, memory_format=self.memory_format).eval()
        self.routes = accelerate(self.model, self.precision, self.device, large_kernel)
        self.compiled = CompiledForward(self.model, self.precision, self.device) if compile else None
        self.fallbacks = 0

    @property
    def warmups(self) -> dict[tuple[int, ...], float]:
        """Seconds spent compiling, per input shape (empty without `compile`)."""
        return self.compiled.warmups if self.compiled else {}

    def _forward(self, x: torch.Tensor, precision: str) -> torch.Tensor:
        x = x.to(self.device, memory_format=self.memory_format)
        if self.compiled and precision == self.precision:
            return self.compiled(x)
        return mixed_precision_forward(self.model, x, autocast_dtype(precision))

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One pass over a whole NCHW input on the device (fp32 out); non-finite low-precision output is redone."""
        y = self._forward(x, self.precision)
        if self.precision != "fp32" and not torch.isfinite(y).all():
            self.fallbacks += 1
            logger.warning(f"{self.precision} output of a {tuple(x.shape[-2:])} input is not finite: redone in fp32")
            y = self._forward(x, "fp32")
        return y

    def auto_tile(self, height: int, width: int, batch: int = 1) -> int | None:
        """None when `batch` whole `height` x `width` inputs fit in half the free memory, else the largest tile that
        does (multiple of 8, >= 64), from the network's `activation_bytes_per_pixel` (or a conservative
        `UNKNOWN_BYTES_PER_PIXEL` for networks without one)."""
        element = (autocast_dtype(self.precision) or torch.float32).itemsize
        estimate = getattr(self.model, "activation_bytes_per_pixel", None)
        per_pixel = batch * (estimate(element) if estimate else UNKNOWN_BYTES_PER_PIXEL)
        budget = available_memory(self.device) // 2
        if height * width * per_pixel <= budget:
            return None
        return max(64, int(math.sqrt(budget / per_pixel)) // 8 * 8)

    @torch.inference_mode()
    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW RGB in [0, 1] -> NCHW fp32 on the CPU, unclamped."""
        tile = self.auto_tile(*x.shape[-2:], batch=x.shape[0]) if self.tile == "auto" else self.tile
        if tile and max(x.shape[-2:]) > tile:
            overlap = min(self.tile_overlap, tile // 2 - 1)
            return tiled_forward(self.forward, x, self.scale, tile, overlap).cpu()
        return self.forward(x).cpu()

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return self.batch([img])[0]

    def batch(self, imgs: list[np.ndarray]) -> list[np.ndarray]:
        """Upscale images of one shape and dtype in one pass (a batch: video frames on a GPU); see the class."""
        if not imgs:
            return []
        for img in imgs:
            check_image(img)
        if len({(img.shape, img.dtype) for img in imgs}) > 1:
            raise UserError("a batch needs images of one shape and dtype")
        img = imgs[0]
        channels = 1 if img.ndim == 2 else img.shape[2]
        peak = float(np.iinfo(img.dtype).max)
        colour = np.stack([i.reshape(*img.shape[:2], channels)[..., : min(channels, 3)] for i in imgs])
        colour = colour.astype(np.float32) / peak
        if colour.shape[3] == 1:
            colour = np.repeat(colour, 3, axis=3)
        x = torch.from_numpy(np.ascontiguousarray(colour.transpose(0, 3, 1, 2)))
        outs = self.upscale_tensor(x).permute(0, 2, 3, 1).numpy()
        return [self._finish(out, original, peak) for out, original in zip(outs, imgs, strict=True)]

    def upscale_video(self, src: str, dst: str, settings: VideoSettings | None = None, **options: Any) -> VideoRun:
        """Upscale the video file `src` into `dst` in one streaming pass, keeping its audio, subtitles, timestamps and
        colour tags (PyAV, the `video` extra); `settings` choose the codec, quality and pixel format, `options` are
        `inference.video.upscale_video`'s (batch, resume, overlap, progress)."""
        from plksr_arch.inference.video import upscale_video

        return upscale_video(self, src, dst, settings, **options)

    def _finish(self, out: np.ndarray, img: np.ndarray, peak: float) -> np.ndarray:
        """The network's HxWx3 float output back to `img`'s dtype and channel layout (grey, alpha)."""
        channels = 1 if img.ndim == 2 else img.shape[2]
        if channels == 1:
            out = out.mean(axis=2, keepdims=True)
        if channels == 4:
            h, w = img.shape[:2]
            alpha = cv2.resize(
                img[..., 3].astype(np.float32) / peak, (w * self.scale, h * self.scale), interpolation=cv2.INTER_CUBIC
            )
            out = np.concatenate([out, alpha[..., None]], axis=2)
        out = (np.clip(out, 0.0, 1.0) * peak).round().astype(img.dtype)
        return out[..., 0] if img.ndim == 2 else out


def check_image(img: np.ndarray) -> None:
    """Raise UserError unless `img` is an HxW or HxWxC (C = 1, 3, 4) uint8/uint16 array."""
    if img.dtype not in (np.uint8, np.uint16):
        raise UserError(f"image dtype {img.dtype} is not supported (uint8 or uint16)")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise UserError(f"image shape {img.shape} is not HxW or HxWxC with C = 1, 3 or 4")
