"""Faster inference routes for PLKSR/RealPLKSR, each chosen by measurement on the machine that runs it.

- **Spectral PLKC** (`SpectralConv2d`): the PLKC's large k x k convolution computed by overlap-save FFT on L x L
  tiles. The direct 17x17 convolution costs 2 * 16 * 16 * 289 FLOPs per pixel, 28% of PLKSR's FLOPs; in the
  frequency domain the channel mixing is one small real matrix product per frequency and the transforms cost
  O(log L) per pixel, so the same result (to fp32 rounding, ~1e-6) takes a fraction of the work. Measured on an
  AVX2-only EPYC (fp32, 16 channels, 180x320, channels_last, median of 9): 17x17 68 ms direct, 20 ms spectral;
  13x13 32 ms and 18 ms (L = 64).
  Whether it wins is measured per kernel shape and precision (`large_kernel_route`): on CPUs whose bf16
  convolutions run on AMX the direct kernel may be faster, and on GPUs cuDNN's is, so only CPUs consider it.

The other faster route, `inference.CompiledForward` (`torch.compile` of the whole mixed-precision pass), lives with
that pass.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from plksr_arch.errors import UserError
from plksr_arch.runtime.device import LARGE_KERNEL_ROUTES, autocast_dtype
from plksr_arch.runtime.measure import time_runs

logger = logging.getLogger("plksr")

# Convolutions considered for the spectral route: square, odd, at least this large (a 3x3 never gains).
SPECTRAL_MIN_KERNEL = 7
# The probe map on which both routes are timed (LR pixels): three tiles of 48 a side with k = 17.
PROBE_SIZE = 144
# FFT tile size: L = 64 was among the fastest of 32..128 for 16-channel 17x17 and 13x13 kernels at 144x144 and
# 180x320 (AVX2 EPYC, fp32; 80 was as fast at 180x320, 48 and 128 slower everywhere).
FFT_TILE = 64


class SpectralConv2d(nn.Module):
    """`conv(x)` for a stride-1, zero-padded ('same') square convolution with odd kernel k, computed by
    overlap-save FFT: the input is cut into `tile` x `tile` windows overlapping by k - 1 pixels, each window's
    spectrum is multiplied by the kernel's (per frequency, one real matrix product of the inputs' real and imaginary
    parts with the kernel's) and transformed back; the valid (tile - k + 1)^2 part of each window is kept.

    Computes in fp32 whatever the input dtype or autocast (FFTs have no bf16 kernels on the CPU) and returns the
    input's dtype. The kernel's spectrum is computed once, at construction (the weights are frozen for inference):
    `tile * (tile / 2 + 1) * 2 * out * in` floats, 4.1 MiB for PLKC's 16 channels at L = 64 (115 MiB for PLKSR's
    28 blocks).
    """

    def __init__(self, conv: nn.Conv2d, tile: int = FFT_TILE) -> None:
        super().__init__()
        k = conv.kernel_size[0]
        if not _same_square_odd(conv) or tile <= k:
            raise ValueError(f"SpectralConv2d: {conv} is not a stride-1 'same' square odd convolution (tile {tile})")
        self.tile, self.pad, self.step = tile, k // 2, tile - (k - 1)
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        weight = conv.weight.detach().float()
        bias = conv.bias.detach().float() if conv.bias is not None else torch.zeros(conv.out_channels)
        self.register_buffer("bias", bias.to(weight.device), persistent=False)
        self.register_buffer("spectrum", weight_spectrum(weight, tile).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spectral_conv2d(x, self.spectrum, self.bias, self.tile, self.pad)


def weight_spectrum(weight: torch.Tensor, tile: int) -> torch.Tensor:
    """(frequencies, 2 * out, in) real matrices `[A; B]` of a kernel on `tile` x `tile` windows, with
    A[o, i] = Re W[o, i] and B[o, i] = Im W[o, i]: Y = X * conj(W), the cross-correlation that `conv2d` computes, is
    X A - i X B for complex X. Differentiable (training computes it from the current weights at every step)."""
    with torch.autocast(weight.device.type, enabled=False):
        w = torch.fft.rfft2(weight.float(), s=(tile, tile))  # (out, in, L, L/2+1)
    parts = torch.cat([w.real, w.imag], 0)  # (2 out, in, L, L/2+1)
    return parts.permute(2, 3, 0, 1).reshape(-1, 2 * weight.shape[0], weight.shape[1])


def spectral_tile(height: int, width: int, kernel: int) -> int:
    """The FFT window for a training map: one window holding the whole (padded) map when it fits in 128 pixels (a
    48 x 48 patch with k = 13 is one 64 x 64 transform), else overlap-save `FFT_TILE` windows."""
    need = max(height, width) + kernel - 1
    return next((size for size in (32, 48, 64, 80, 96, 128) if size >= need), FFT_TILE)


def spectral_conv2d_trainable(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`conv2d(x, weight, bias, padding=k // 2)` by FFT with autograd through the transforms (training's spectral
    PLKC route): forward and gradients match the direct convolution to fp32 rounding. Computes in fp32 whatever
    the autocast and returns the input's dtype."""
    k = weight.shape[-1]
    tile = spectral_tile(x.shape[-2], x.shape[-1], k)
    if bias is None:
        bias = weight.new_zeros(weight.shape[0])
    with torch.autocast(x.device.type, enabled=False):
        spectrum = weight_spectrum(weight, tile)
        return _correlate(x.float(), spectrum, bias.float(), tile, k // 2).to(x.dtype)


@torch.library.custom_op("plksr::spectral_conv2d", mutates_args=())
def spectral_conv2d(x: torch.Tensor, spectrum: torch.Tensor, bias: torch.Tensor, tile: int, pad: int) -> torch.Tensor:
    """The overlap-save correlation of `SpectralConv2d`, as one operator: `torch.compile` keeps it whole (inductor
    has no code generation for complex tensors) and fuses around it."""
    with torch.autocast(x.device.type, enabled=False):
        return _correlate(x.float(), spectrum, bias, tile, pad).to(x.dtype)


@spectral_conv2d.register_fake
def _(x: torch.Tensor, spectrum: torch.Tensor, bias: torch.Tensor, tile: int, pad: int) -> torch.Tensor:
    return x.new_empty(x.shape[0], bias.shape[0], *x.shape[2:])


def _correlate(x: torch.Tensor, spectrum: torch.Tensor, bias: torch.Tensor, size: int, p: int) -> torch.Tensor:
    n, c, h, w = x.shape
    step = size - 2 * p
    rows, cols = -(-h // step), -(-w // step)
    padded = F.pad(x, (p, p + cols * step - w, p, p + rows * step - h))
    windows = padded.unfold(2, size, step).unfold(3, size, step)  # (n, c, rows, cols, L, L)
    windows = windows.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, size, size)
    spectra = torch.view_as_real(torch.fft.rfft2(windows))  # (windows, c, L, L/2+1, 2)
    count, half, out_c = spectra.shape[0], spectra.shape[3], bias.shape[0]
    # One real product per frequency, (A; B) by the inputs' (window, re/im) columns: X A and X B as complex numbers.
    columns = spectra.permute(2, 3, 1, 0, 4).reshape(size * half, c, 2 * count)
    products = torch.view_as_complex(torch.bmm(spectrum, columns).view(size * half, 2, out_c, count, 2))
    mixed = torch.add(products[:, 0], products[:, 1], alpha=-1j)  # Y = X A - i X B: (frequencies, out, windows)
    mixed = mixed.view(size, half, out_c, count).permute(3, 2, 0, 1)
    y = torch.fft.irfft2(mixed, s=(size, size))[..., :step, :step]
    y = y.reshape(n, rows, cols, out_c, step, step).permute(0, 3, 1, 4, 2, 5).reshape(n, out_c, rows * step, -1)
    if torch.is_grad_enabled() and (x.requires_grad or spectrum.requires_grad or bias.requires_grad):
        return y[..., :h, :w] + bias[:, None, None]
    out = torch.empty(n, out_c, h, w, device=x.device)  # contiguous, as the operator's fake promises
    return torch.add(y[..., :h, :w], bias[:, None, None], out=out)


def _same_square_odd(conv: nn.Module) -> bool:
    """A plain `nn.Conv2d`: square odd kernel, stride 1, no dilation or groups, zero 'same' padding."""
    if type(conv) is not nn.Conv2d:
        return False
    k = conv.kernel_size[0]
    return (
        conv.kernel_size == (k, k)
        and k % 2 == 1
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding == (k // 2, k // 2)
        and conv.padding_mode == "zeros"
    )


def spectral_candidate(conv: nn.Module) -> bool:
    """Whether `conv` may take the spectral route: `_same_square_odd` and at least `SPECTRAL_MIN_KERNEL` wide."""
    return _same_square_odd(conv) and conv.kernel_size[0] >= SPECTRAL_MIN_KERNEL


_routes: dict[tuple, tuple[str, float, float]] = {}


@torch.inference_mode()
def large_kernel_route(conv: nn.Conv2d, precision: str, device: torch.device) -> tuple[str, float, float]:
    """(`direct` or `spectral`, direct ms, spectral ms): both routes timed on a `PROBE_SIZE` map in `precision`,
    channels_last, on the CPU; on other devices `direct` without timing (ms 0). Measured and logged once per
    shape and precision in a process."""
    if device.type != "cpu":
        return "direct", 0.0, 0.0
    key = (conv.in_channels, conv.out_channels, conv.kernel_size[0], precision, str(device))
    if key not in _routes:
        dtype = autocast_dtype(precision)
        x = torch.rand(1, conv.in_channels, PROBE_SIZE, PROBE_SIZE).contiguous(memory_format=torch.channels_last)
        direct = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding).to(
            memory_format=torch.channels_last
        )
        spectral = SpectralConv2d(direct)
        times = []
        for route in (direct, spectral):
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                times.append(time_runs(lambda route=route: route(x), device, warmup=1, runs=3))
        route = "spectral" if times[1] < times[0] else "direct"
        _routes[key] = (route, *times)
        logger.info(
            f"large kernel {key[0]}->{key[1]} {key[2]}x{key[2]} ({precision}): {route} (direct {times[0]:.1f} ms, "
            f"spectral {times[1]:.1f} ms on a {PROBE_SIZE}x{PROBE_SIZE} probe)"
        )
    return _routes[key]


def accelerate(model: nn.Module, precision: str, device: torch.device, large_kernel: str = "auto") -> dict[str, str]:
    """Give each large convolution of `model` (in place) the route `large_kernel` names: `direct` keeps it,
    `spectral` swaps it for a `SpectralConv2d`, `auto` measures which is faster here (`large_kernel_route`).
    Returns {module name: route}. For frozen inference weights: the spectral route computes the kernel's spectrum
    now and no longer follows the conv's weights."""
    if large_kernel not in LARGE_KERNEL_ROUTES:
        raise UserError(f"large_kernel: {large_kernel!r} is not one of {', '.join(LARGE_KERNEL_ROUTES)}")
    chosen: dict[str, str] = {}
    for name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if not spectral_candidate(child):
                continue
            route = large_kernel_route(child, precision, device)[0] if large_kernel == "auto" else large_kernel
            if route == "spectral":
                setattr(parent, child_name, SpectralConv2d(child))
            chosen[f"{name}.{child_name}" if name else child_name] = route
    return chosen
