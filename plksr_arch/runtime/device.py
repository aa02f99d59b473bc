"""Device and precision policy: the one place that decides where PLKSR runs and in which dtype.

`Upscaler`, `PLKSRModel` (training and validation), `plksr bench` and `plksr demo` all ask this module, so they agree:

- `auto` is fp16 on CUDA (the paper's setting), bf16 on a CPU with native bf16 (AVX512-BF16 or AMX), fp32 on any
  other CPU. It is never slower than fp32: without native bf16, oneDNN emulates bf16 and a PLKSR-tiny training
  step took 20x longer than in fp32 (AVX2-only AMD EPYC, 69.5 s against 3.45 s).
- An explicit `bf16` on a CPU without native bf16 is honoured, with a warning; `fp16` on a CPU is refused for
  inference (slow, and overflows without a scaler), and in option files (`amp_dtype: fp16`, the paper's GPU
  setting) it means "the best AMP dtype of this CPU", logged.

The CPU probe can be overridden with `PLKSR_CPU_ISA` (`avx2`, `avx512`, `avx512_bf16`, `amx`, `other`), which is how
the tests check the choice of every machine class on one machine. Importing this module does not import torch, so
the `plksr` command can list the precisions without paying for it.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import TYPE_CHECKING

from plksr_arch.errors import UserError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
AMP_DTYPES = ("auto", "fp16", "bf16")
CPU_ISAS = ("amx", "avx512_bf16", "avx512", "avx2", "other")
NATIVE_BF16_ISAS = ("amx", "avx512_bf16")
ISA_ENV = "PLKSR_CPU_ISA"
# How an inference pass computes PLKC's large kernel (`accel.accelerate`): measured, oneDNN/cuDNN, or by FFT.
LARGE_KERNEL_ROUTES = ("auto", "direct", "spectral")

logger = logging.getLogger("plksr")
_said: set[str] = set()


def say_once(level: int, message: str) -> None:
    """Log `message` at `level` the first time it is said in this process."""
    if message not in _said:
        _said.add(message)
        logger.log(level, message)


@functools.cache
def _probe_cpu_isa() -> str:
    import torch

    cpu = torch.cpu
    onednn_bf16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    if onednn_bf16 and getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        return "amx"
    if onednn_bf16 and getattr(cpu, "_is_avx512_bf16_supported", lambda: False)():
        return "avx512_bf16"
    if getattr(cpu, "_is_avx512_supported", lambda: False)():
        return "avx512"
    if getattr(cpu, "_is_avx2_supported", lambda: False)():
        return "avx2"
    return "other"


def cpu_isa() -> str:
    """The CPU class that decides precision: `amx`, `avx512_bf16`, `avx512`, `avx2` or `other` (non-x86 too).

    `PLKSR_CPU_ISA` overrides the probe (tests, or a machine whose probe is wrong)."""
    override = os.environ.get(ISA_ENV)
    if override is None:
        return _probe_cpu_isa()
    if override not in CPU_ISAS:
        raise UserError(f"{ISA_ENV}={override!r} is not one of {', '.join(CPU_ISAS)}")
    return override


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    return cpu_isa() in NATIVE_BF16_ISAS


def describe(device: torch.device) -> str:
    """`cuda:0 (NVIDIA H200)` or `cpu (avx2, no native bf16)`, for log lines."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({cpu_isa()}, {'native' if cpu_has_native_bf16() else 'no native'} bf16)"


def resolve_device(device: str | torch.device) -> torch.device:
    """`auto` = the first CUDA GPU if there is one, else the CPU; anything else as torch understands it."""
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise UserError(f"device: {device!r} is not a device (auto, cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device: {device} requested but CUDA is not available")
    return device


def check_num_gpu(num_gpu: object) -> None:
    """The one rule for an option file's `num_gpu`: an int >= 0 or `auto`; raises ValueError."""
    if num_gpu != "auto" and not (isinstance(num_gpu, int) and not isinstance(num_gpu, bool) and num_gpu >= 0):
        raise ValueError(f"{num_gpu!r} is not an int >= 0 or 'auto'")


def resolve_num_gpu(opt: dict) -> None:
    """An option file's `num_gpu`: `auto` becomes the GPU count; without CUDA any count becomes 0 (one warning)."""
    check_num_gpu(opt.get("num_gpu", 1))
    import torch

    if opt.get("num_gpu", 1) == "auto":
        opt["num_gpu"] = torch.cuda.device_count()
    elif opt.get("num_gpu", 1) > 0 and not torch.cuda.is_available():
        logger.warning(f"num_gpu: {opt['num_gpu']} but CUDA is not available: running on the CPU")
        opt["num_gpu"] = 0
    opt.setdefault("num_gpu", 0)


def resolve_precision(requested: str, device: torch.device) -> str:
    """The precision (`fp32`, `fp16` or `bf16`) to run in: `auto` by the rule in the module docstring (said once
    when a CPU without native bf16 makes it fp32); explicit choices are checked and honoured."""
    import torch

    if requested not in PRECISIONS:
        raise UserError(f"precision: {requested!r} is not one of {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        if requested == "bf16" and not torch.cuda.is_bf16_supported():
            raise UserError(f"precision: bf16 is not supported by {describe(device)}; use fp16 or fp32")
        return "fp16" if requested == "auto" else requested
    if requested == "fp16":
        raise UserError("precision: fp16 is slow and unsafe on the CPU; use auto, bf16 or fp32")
    native = device.type == "cpu" and cpu_has_native_bf16()
    if requested == "auto":
        if native:
            return "bf16"
        if device.type == "cpu":
            say_once(logging.INFO, f"precision auto: fp32 on this {describe(device)}")
        return "fp32"
    if requested == "bf16" and not native:
        say_once(
            logging.WARNING,
            f"precision bf16 on {describe(device)}: bf16 is emulated here and slower than fp32 "
            "(a training step ~20x slower, measured on AVX2); use auto or fp32",
        )
    return requested


def check_amp_dtype(amp_dtype: object) -> None:
    """The one rule for an option file's `amp_dtype`: one of `AMP_DTYPES`; raises ValueError."""
    if amp_dtype not in AMP_DTYPES:
        raise ValueError(f"{amp_dtype!r} is not one of {', '.join(AMP_DTYPES)}")


def amp_precision(amp_dtype: str, device: torch.device) -> str:
    """The precision of an option file's AMP (`use_amp: true` with `amp_dtype`): `fp16` is the paper's GPU setting,
    so on a CPU it is read as `auto` (logged once); then `resolve_precision`'s rule."""
    try:
        check_amp_dtype(amp_dtype)
    except ValueError as err:
        raise UserError(f"amp_dtype: {err}") from None
    if amp_dtype == "fp16" and device.type != "cuda":
        say_once(logging.INFO, "amp_dtype: fp16 is a GPU setting; on the CPU it means auto (bf16 if native, else fp32)")
        amp_dtype = "auto"
    return resolve_precision(amp_dtype, device)


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision; None for fp32 (no autocast)."""
    import torch

    return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def precision_name(dtype: torch.dtype | None) -> str:
    """The precision an autocast dtype stands for (None: fp32); `autocast_dtype`'s inverse."""
    return {"torch.float16": "fp16", "torch.bfloat16": "bf16"}.get(str(dtype), "fp32")


def needs_grad_scaler(dtype: torch.dtype | None) -> bool:
    """Whether training in `dtype` needs loss scaling: fp16 does (gradients underflow), bf16 has fp32's range and
    fp32 needs none. (fp16 training happens on CUDA only: `amp_precision` never gives it on a CPU.)"""
    import torch

    return dtype == torch.float16


def memory_format(precision: str) -> torch.memory_format:
    """Training's memory format (the demo's choice; option files set `channels_last` themselves): channels_last for
    low precision (what oneDNN and cuDNN want: 2.5x for bf16 on a CPU, measured), NCHW for fp32."""
    import torch

    return torch.contiguous_format if precision == "fp32" else torch.channels_last


def inference_memory_format(precision: str, device: torch.device) -> torch.memory_format:
    """Inference's memory format: channels_last on CPUs in every precision (fp32 PLKSR x4 at HD: 7.0 s against
    11.1 s in NCHW on an AVX2-only EPYC, same output to 1e-6) and on GPUs for fp16/bf16; NCHW for fp32 on GPUs."""
    import torch

    if device.type == "cpu" or precision != "fp32":
        return torch.channels_last
    return torch.contiguous_format
