"""Export PLKSR and RealPLKSR for deployment: ONNX (checked with onnxruntime against PyTorch) and Core ML.

ONNX goes through torch's exporter (`torch.onnx.export(dynamo=True)`, which needs onnxscript) with dynamic batch,
height and width unless `static` fixes the input size. Traced, PLKC takes its split + concat path: the graph has no
in-place slice assignment (ScatterND). After export the file is run
with onnxruntime (CPU) on two input sizes and compared with PyTorch: fp32 must agree to `FP32_MAX_ABS`, an fp16
graph must reach `FP16_MIN_PSNR` against PyTorch's fp32 output.

The `[export]` extra installs onnx, onnxscript and onnxruntime; `[coreml]` installs coremltools.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import math
import os.path as osp
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .errors import UserError

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
    from .archs.registry import spec_of

    spec = spec_of(model)
    if spec is not None and route not in spec.exports:
        raise ExportError(f"{weights}: {spec.name} has no {route} export (it has: {', '.join(spec.exports)})")


def size_of(path: str) -> str:
    return f"{osp.getsize(path) / 2**20:.1f} MiB"


# MIL ops that compute shapes at run time; Core ML evaluates them on the CPU, so a program holding one cannot stay on
# the GPU / Neural Engine. PLKSR's program (built with `is_coreml`) must hold none.
CPU_ONLY_OPS = frozenset({"shape", "select", "gather", "gather_nd", "real_div", "floor_div", "range_1d", "fill_like"})


@dataclass(frozen=True)
class CoreMLReport:
    """What can be checked of a Core ML export without macOS: the spec's input/output and the program's ops."""

    path: str
    inputs: str
    outputs: str
    ops: tuple[str, ...]
    cpu_only: tuple[str, ...]

    def __str__(self) -> str:
        lines = [
            f"{self.path}: Core ML ML program (iOS 16+ / macOS 13+), fp16 weights and compute",
            f"input {self.inputs}; output {self.outputs}",
            f"MIL ops: {', '.join(self.ops)}",
            "run-time shape ops (Core ML runs them on the CPU): " + (", ".join(self.cpu_only) or "none"),
            "Prediction needs macOS (coremltools' runtime); this machine checked conversion, spec and ops.",
        ]
        return "\n".join(lines)


def _describe(feature) -> str:
    array = feature.type.multiArrayType
    dtype = {65552: "fp16", 65568: "fp32"}.get(array.dataType, str(array.dataType))
    if array.shapeRange.sizeRanges:
        dims = [f"{r.lowerBound}..{r.upperBound if r.upperBound >= 0 else 'inf'}" for r in array.shapeRange.sizeRanges]
    else:
        dims = [str(d) for d in array.shape] or ["flexible"]
    return f"{feature.name} {dtype} [{', '.join(dims)}]"


def export_coreml(
    weights: str,
    path: str,
    *,
    static: tuple[int, int] | None = None,
    arch_options: Mapping[str, Any] | None = None,
) -> CoreMLReport:
    """Convert `weights` to a Core ML ML program at `path` (.mlpackage): the network's global skip in Core ML
    ops (`is_coreml`, the official switch), fp16 weights and compute, input `input` (1, 3, H, W) with H and W
    flexible from 8 to 2048 unless `static` fixes them; output `output` (1, 3, sH, sW)."""
    require(("coremltools",), "coreml")
    logging.getLogger("coremltools").setLevel(logging.ERROR)  # on Linux it warns at import that it cannot predict
    import coremltools as ct

    from .checkpoint import load_model

    if not path.endswith(".mlpackage"):
        raise ExportError(f"{path}: a Core ML ML program is saved as a .mlpackage folder")
    model = load_model(weights, **(arch_options or {}))
    check_route(model, "coreml", weights)
    model.is_coreml = True
    h, w = static or (64, 64)
    traced = torch.jit.trace(model, torch.rand(1, 3, h, w))
    size = (h, w) if static else (ct.RangeDim(8, 2048, 64), ct.RangeDim(8, 2048, 64))
    try:
        mlmodel = ct.convert(
            traced,
            inputs=[ct.TensorType(name="input", shape=(1, 3, *size))],
            outputs=[ct.TensorType(name="output")],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT16,
            minimum_deployment_target=ct.target.iOS16,
        )
    except Exception as err:
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise ExportError(f"{path}: Core ML conversion failed (coremltools {ct.__version__}): {first}") from None
    mlmodel.save(path)
    ops = sorted({op.op_type for fn in mlmodel._mil_program.functions.values() for op in fn.operations})
    description = mlmodel.get_spec().description
    return CoreMLReport(
        path,
        _describe(description.input[0]),
        _describe(description.output[0]),
        tuple(ops),
        tuple(op for op in ops if op in CPU_ONLY_OPS),
    )
