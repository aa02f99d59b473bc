"""Core ML export (`[coreml]` extra: coremltools): an ML program traced with the network's `is_coreml` path, checked
to hold no op that pins it to the CPU (`CPU_ONLY_OPS`), compared with PyTorch where Core ML can run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from plksr_arch.export.onnx_export import ExportError, check_route, require

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

    from plksr_arch.weights.read import load_model

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
