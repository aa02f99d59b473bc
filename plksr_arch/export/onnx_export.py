"""ONNX export, checked with onnxruntime against PyTorch; the route checks and errors both exporters share.

ONNX goes through torch's exporter (`torch.onnx.export(dynamo=True)`, which needs onnxscript) with dynamic batch,
height and width unless `static` fixes the input size. Traced, PLKC takes its split + concat path: the graph has no
in-place slice assignment (ScatterND). After export the file is run
with onnxruntime (CPU) on two input sizes and compared with PyTorch: fp32 must agree to `FP32_MAX_ABS`, an fp16
graph must reach `FP16_MIN_PSNR` against PyTorch's fp32 output.

The `[export]` extra installs onnx, onnxscript and onnxruntime.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import math
import os.path as osp
from dataclasses import dataclass

import torch
from torch import nn

from plksr_arch.errors import UserError

FP32_MAX_ABS = 1e-4


FP16_MIN_PSNR = 50.0


CHECK_SIZES = ((1, 3, 32, 48), (2, 3, 21, 27))  # two batch/size combinations, odd sizes included


ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


class ExportError(UserError):
    """An export that cannot be made or does not reproduce PyTorch; the message names the file and the figures."""


def require(packages: tuple[str, ...], extra: str) -> None:
    """UserError with the install hint when one of `packages` is missing."""
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise UserError(f"{', '.join(missing)} not installed: pip install 'plksr-arch[{extra}]'")


@dataclass(frozen=True)
class Check:
    """One comparison of an exported model with PyTorch on one input shape."""

    shape: tuple[int, ...]
    max_abs: float
    psnr: float

    def __str__(self) -> str:
        return f"input {'x'.join(map(str, self.shape))}: max |diff| {self.max_abs:.2e}, PSNR {self.psnr:.1f} dB"


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return 10 * math.log10(1.0 / mse) if mse else math.inf


def export_onnx(
    model: nn.Module, path: str, *, fp16: bool = False, opset: int = 18, static: tuple[int, int] | None = None
) -> None:
    """Write `model` (PLKSR/RealPLKSR, eval mode) as ONNX: input `input` (N, 3, H, W) -> `output` (N, 3, sH, sW);
    batch, H and W dynamic unless `static` = (H, W) fixes them; `fp16` exports fp16 weights and fp16 input/output."""
    require(ONNX_PACKAGES, "export")
    net = model.eval().half() if fp16 else model.eval().float()
    h, w = static or (CHECK_SIZES[0][2], CHECK_SIZES[0][3])
    example = torch.rand(1, 3, h, w, dtype=torch.float16 if fp16 else torch.float32)
    dynamic = None
    if static is None:
        dim = torch.export.Dim
        dynamic = {
            "x": {0: dim("batch", max=1024), 2: dim("height", min=2, max=8192), 3: dim("width", min=2, max=8192)}
        }
    for name in ("onnxscript", "onnx_ir"):  # their optimiser logs every rewrite at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torch.onnx prints its progress; failures raise
            torch.onnx.export(
                net,
                (example,),
                path,
                dynamo=True,
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=dynamic,
                opset_version=opset,
                external_data=False,  # one self-contained file (PLKSR is far below protobuf's 2 GB)
                verbose=False,
            )
    except Exception as err:
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        hint = " (try fixed shapes: --static HxW)" if static is None else ""
        raise ExportError(f"{path}: ONNX export failed{hint}: {type(err).__name__}: {first}") from None
    finally:
        model.float()


def verify_onnx(
    model: nn.Module, path: str, *, fp16: bool = False, static: tuple[int, int] | None = None
) -> list[Check]:
    """Run `path` with onnxruntime (CPU) on two input shapes (two inputs of the one shape of a static export) and
    compare with PyTorch fp32; raise ExportError when fp32 differs by more than FP32_MAX_ABS or fp16 falls below
    FP16_MIN_PSNR."""
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    shapes = [(1, 3, *static)] * 2 if static else list(CHECK_SIZES)  # static: the one size, two inputs
    generator = torch.Generator().manual_seed(0)
    checks = []
    for shape in shapes:
        x = torch.rand(*shape, generator=generator)
        with torch.no_grad():
            expected = model.eval().float()(x)
        feed = x.half().numpy() if fp16 else x.numpy()
        got = torch.from_numpy(session.run(None, {"input": feed})[0]).float()
        if got.shape != expected.shape:
            raise ExportError(
                f"{path}: output shape {tuple(got.shape)} for input {shape}, PyTorch gives {tuple(expected.shape)}"
            )
        checks.append(Check(shape, float((got - expected).abs().max()), _psnr(got, expected)))
    for check in checks:
        if (not fp16 and check.max_abs > FP32_MAX_ABS) or (fp16 and check.psnr < FP16_MIN_PSNR):
            limit = f"PSNR >= {FP16_MIN_PSNR} dB" if fp16 else f"max |diff| <= {FP32_MAX_ABS}"
            raise ExportError(f"{path}: onnxruntime does not reproduce PyTorch ({check}; needed {limit})")
    return checks


def check_route(model: nn.Module, route: str, weights: str) -> None:
    """ExportError unless the spec of `model`'s architecture (`archs.registry`) declares the export `route`."""
    from plksr_arch.archs.registry import spec_of

    spec = spec_of(model)
    if spec is not None and route not in spec.exports:
        raise ExportError(f"{weights}: {spec.name} has no {route} export (it has: {', '.join(spec.exports)})")


def size_of(path: str) -> str:
    return f"{osp.getsize(path) / 2**20:.1f} MiB"
