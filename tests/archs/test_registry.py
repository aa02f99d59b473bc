"""archs/registry.py: the one list of architectures. A third architecture defined here, added to the list, goes through
save -> load -> convert -> Upscaler -> ONNX export -> bench rows without a change to any package file; PLKSR's and
RealPLKSR's specs recognise their own weights only."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from plksr_arch import PLKSR, RealPLKSR
from plksr_arch.archs import registry
from plksr_arch.archs.plksr_arch import store_hyperparameters
from plksr_arch.archs.spec import ArchSpec


class ToySR(nn.Module):
    """A third architecture: two convolutions and a pixel shuffle."""

    @store_hyperparameters
    def __init__(self, *, dim: int = 8, upscaling_factor: int = 2, slope: float = 0.1) -> None:
        super().__init__()
        self.toy_head = nn.Conv2d(3, dim, 3, padding=1)
        self.toy_tail = nn.Conv2d(dim, 3 * upscaling_factor**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(upscaling_factor)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.toy_tail(F.leaky_relu(self.toy_head(x), self.slope)))


def _read_config(state, name: str) -> dict:
    if "toy_tail.weight" not in state:
        raise ValueError(f"{name}: missing 'toy_tail.weight': not a ToySR state dict")
    return {
        "dim": state["toy_head.weight"].shape[0],
        "upscaling_factor": math.isqrt(state["toy_tail.weight"].shape[0] // 3),
    }


TOY = ArchSpec(
    name="ToySR",
    cls=ToySR,
    presets={"ToySR": {"dim": 8}},
    recognises=lambda state: "toy_head.weight" in state,
    read_config=_read_config,
    undetectable=("slope",),
)


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> ToySR:
    monkeypatch.setattr(registry, "SPECS", [*registry.SPECS, TOY])
    return ToySR(dim=8, upscaling_factor=2, slope=0.3).eval()


def test_a_third_architecture_goes_through_every_route(tmp_path: Path, toy: ToySR, capsys, caplog) -> None:
    from plksr_arch import Upscaler, load_model
    from plksr_arch.cli import main
    from plksr_arch.weights.read import read_checkpoint
    from plksr_arch.weights.write import save_weights

    x = torch.rand(1, 3, 12, 16)
    with torch.no_grad():
        expected = toy(x)
    save_weights(toy, str(tmp_path / "toy.pth"))
    assert read_checkpoint(str(tmp_path / "toy.pth")).architecture == "ToySR"
    loaded = load_model(str(tmp_path / "toy.pth"))
    assert isinstance(loaded, ToySR) and loaded.hyperparameters["slope"] == 0.3
    torch.testing.assert_close(loaded(x), expected)

    torch.save({"params": toy.state_dict()}, tmp_path / "raw.pth")  # nothing stored: the spec reads the tensors
    assert (
        main(["convert", str(tmp_path / "raw.pth"), str(tmp_path / "toy.safetensors"), "--arch-opt", "slope=0.3"]) == 0
    )
    assert "toy.safetensors: ToySR(dim=8, upscaling_factor=2, slope=0.3), fp32" in capsys.readouterr().out
    torch.testing.assert_close(load_model(str(tmp_path / "toy.safetensors"))(x), expected)
    with caplog.at_level("WARNING", logger="plksr"):
        load_model(str(tmp_path / "raw.pth"))
    assert "its weights cannot show slope: slope=0.1 assumed" in caplog.text

    upscaler = Upscaler(str(tmp_path / "toy.pth"), "cpu", "fp32")
    img = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    out = upscaler(img)
    with torch.no_grad():
        reference = toy(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0].permute(1, 2, 0)
    assert out.shape == (24, 32, 3)
    assert np.abs(out.astype(int) - (reference.clamp(0, 1) * 255).round().numpy()).max() <= 1


def test_a_third_architecture_exports_to_onnx(tmp_path: Path, toy: ToySR) -> None:
    pytest.importorskip("onnxruntime")
    from plksr_arch.cli import main
    from plksr_arch.weights.write import save_weights

    save_weights(toy, str(tmp_path / "toy.pth"))
    assert main(["export", str(tmp_path / "toy.pth"), "-o", str(tmp_path / "toy.onnx"), "--static", "16x16"]) == 0
    assert (tmp_path / "toy.onnx").stat().st_size > 1000
    assert main(["export", str(tmp_path / "toy.pth"), "-o", str(tmp_path / "toy.mlpackage")]) == 2  # not declared


def test_a_third_architecture_gets_our_bench_rows(monkeypatch: pytest.MonkeyPatch, toy: ToySR) -> None:
    """Its preset is timed through Upscaler, and gets an onnxruntime row, like PLKSR's; it is left out of the
    speed-ups against PLKSR."""
    pytest.importorskip("onnxruntime")
    import plksr_arch.bench.protocol as benchmark

    monkeypatch.setattr(benchmark, "input_size", lambda scale: (16, 16))
    monkeypatch.setattr(benchmark, "cpu_peak_mib", lambda *args: 1.0)
    report = benchmark.bench(["ToySR"], torch.device("cpu"), 2, 0, 1, lambda line: None, backends=("onnxruntime",))
    assert [r["label"] for r in report["results"]] == ["ToySR", "ToySR (onnxruntime CPU)"]
    assert report["results"][0]["params"] == sum(p.numel() for p in toy.parameters())
    assert report["speedups"] == {}


@pytest.mark.parametrize(
    "network",
    [
        PLKSR(dim=16, n_blocks=2, kernel_size=7),
        PLKSR(dim=16, n_blocks=0),
        RealPLKSR(dim=16, n_blocks=2, kernel_size=7),
        RealPLKSR(dim=16, n_blocks=0),
    ],
    ids=["PLKSR", "PLKSR-no-blocks", "RealPLKSR", "RealPLKSR-no-blocks"],
)
def test_each_spec_recognises_its_own_weights_only(network: nn.Module) -> None:
    state = network.state_dict()
    assert [spec.name for spec in registry.SPECS if spec.recognises(state)] == [type(network).__name__]
    assert registry.spec_of(network).read_config(state, "w")["n_blocks"] == network.hyperparameters["n_blocks"]


def test_paper_presets_are_the_released_configurations() -> None:
    from plksr_arch import PRESETS

    assert registry.paper_preset_of({"type": "PLKSR", **PRESETS["PLKSR-tiny"], "upscaling_factor": 3}) == "PLKSR-tiny"
    assert registry.paper_preset_of(PLKSR(upscaling_factor=2)) == "PLKSR"
    assert registry.paper_preset_of(PLKSR(upscaling_factor=2, use_ea=False)) is None
    assert registry.paper_preset_of(RealPLKSR(upscaling_factor=2)) is None  # a preset, not the paper's
    assert set(registry.presets()) == {"PLKSR", "PLKSR-tiny", "RealPLKSR"}


def test_realplksr_is_named_by_the_code_of_its_own_module_and_the_public_exports_only() -> None:
    """Everything else reaches RealPLKSR through `archs.registry`: outside archs/realplksr_arch.py and its spec, only
    the code (names and string literals, not docstrings) of the two files that export the public names names it."""
    import ast

    from ..conftest import REPO

    naming = []
    for path in sorted((REPO / "plksr_arch").rglob("*.py")):
        if path.name in ("realplksr_arch.py", "realplksr_spec.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            name = {ast.Name: "id", ast.Attribute: "attr", ast.alias: "name"}.get(type(node))
            text = getattr(node, name) if name else None
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                text = node.value
            if text and "RealPLKSR" in text:
                naming.append(str(path.relative_to(REPO)))
                break
    assert naming == ["plksr_arch/__init__.py", "plksr_arch/archs/__init__.py"]
