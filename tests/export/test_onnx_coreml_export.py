"""ONNX export (checked with onnxruntime) and Core ML conversion of PLKSR and RealPLKSR; skipped without the extras
(`[export]`, `[coreml]`), which CI installs through `.[dev]`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plksr_arch import PLKSR, PRESETS, RealPLKSR
from plksr_arch.errors import UserError
from plksr_arch.weights.write import save_weights

SMALL = {"dim": 16, "n_blocks": 2, "kernel_size": 7}
NETWORKS = [
    pytest.param(lambda: PLKSR(**SMALL, upscaling_factor=2), id="PLKSR-x2"),
    pytest.param(lambda: PLKSR(**SMALL, upscaling_factor=3, ccm_type="CCM", use_ea=False), id="PLKSR-CCM-x3"),
    pytest.param(lambda: RealPLKSR(**SMALL, upscaling_factor=4), id="RealPLKSR-x4"),
    pytest.param(lambda: RealPLKSR(**SMALL, upscaling_factor=3, dysample=True, layer_norm=True), id="Real-DySample"),
]


def _randomised(net: torch.nn.Module) -> torch.nn.Module:
    """Every parameter redrawn (DySample's scope starts at zero, norms at identity), small enough to stay in range."""
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net.eval()


@pytest.mark.parametrize("factory", NETWORKS)
def test_onnx_export_matches_pytorch_on_two_sizes(tmp_path: Path, factory) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import onnx

    from plksr_arch.export.onnx_export import FP32_MAX_ABS, export_onnx, verify_onnx

    net = _randomised(factory())
    path = str(tmp_path / "m.onnx")
    export_onnx(net, path)
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert "ScatterND" not in ops and "Concat" in ops  # PLKC as split + concat: no in-place writes
    checks = verify_onnx(net, path)
    assert [c.shape for c in checks] == [(1, 3, 32, 48), (2, 3, 21, 27)]  # dynamic batch, height and width
    assert all(c.max_abs <= FP32_MAX_ABS for c in checks)


def test_onnx_fp16_static_and_cli(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from plksr_arch.cli import main

    weights = tmp_path / "w.pth"
    save_weights(_randomised(PLKSR(**SMALL, upscaling_factor=4)), str(weights))
    assert main(["export", str(weights), "-o", str(tmp_path / "h.onnx"), "--fp16"]) == 0
    out = capsys.readouterr().out
    assert "h.onnx: PLKSR, fp16, opset 18, dynamic batch/height/width" in out
    psnrs = [float(line.split("PSNR ")[1].split(" dB")[0]) for line in out.splitlines() if "PSNR" in line]
    assert len(psnrs) == 2 and min(psnrs) >= 50.0
    assert main(["export", str(weights), "-o", str(tmp_path / "s.onnx"), "--static", "20x30"]) == 0
    assert "static 20x30" in capsys.readouterr().out
    assert main(["export", str(weights), "-o", str(tmp_path / "s.onnx"), "--static", "20by30"]) == 2
    assert "--static '20by30': expected HxW" in capsys.readouterr().err
    assert main(["export", str(weights), "-o", str(tmp_path / "s.tflite")]) == 2


def test_missing_extras_are_one_line_with_the_install_hint(tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    from plksr_arch.export.coreml_export import export_coreml
    from plksr_arch.export.onnx_export import export_onnx

    real = importlib.util.find_spec
    hidden = ("onnxruntime", "coremltools")
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in hidden else real(n, *a))
    with pytest.raises(UserError, match=r"onnxruntime not installed: pip install 'plksr-arch\[export\]'"):
        export_onnx(PLKSR(**SMALL), str(tmp_path / "m.onnx"))
    with pytest.raises(UserError, match=r"coremltools not installed: pip install 'plksr-arch\[coreml\]'"):
        export_coreml(str(tmp_path / "w.pth"), str(tmp_path / "m.mlpackage"))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["PLKSR", "PLKSR-tiny"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_coreml_conversion_of_the_released_models(tmp_path: Path, variant: str, scale: int) -> None:
    """The paper's edge target: conversion succeeds, flexible fp16 input, and the ML program holds only ops the GPU
    and Neural Engine run (no run-time shape computation). Prediction needs macOS. Each released configuration at
    two blocks: its blocks are identical, so 28 (or 12) give the same program ops, in 4x the conversion time."""
    pytest.importorskip("coremltools")
    from plksr_arch.export.coreml_export import export_coreml

    weights = tmp_path / "w.pth"
    save_weights(PLKSR(**{**PRESETS[variant], "n_blocks": 2}, upscaling_factor=scale), str(weights))
    report = export_coreml(str(weights), str(tmp_path / "m.mlpackage"))
    assert (tmp_path / "m.mlpackage" / "Manifest.json").is_file()
    assert report.inputs == "input fp16 [1..1, 3..3, 8..2048, 8..2048]" and report.outputs.startswith("output fp16")
    expected = {"add", "concat", "const", "conv", "gelu", "pixel_shuffle", "slice_by_index"}
    assert set(report.ops) == expected | ({"mul", "sigmoid"} if variant == "PLKSR" else set())
    assert report.cpu_only == ()
