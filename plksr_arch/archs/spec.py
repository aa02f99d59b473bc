"""What the package knows of an architecture besides its code: `ArchSpec` (torch only, no I/O).

Weights loading, conversion, export, inference, the bench, registration and the paper references read these specs
(`archs.registry.SPECS`) and nothing else, so a new architecture is a module and a spec added to that list.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class ArchSpec:
    """One architecture.

    Attributes:
        name: the registry name (BasicSR's ARCH_REGISTRY, the `architecture` entry of our weights files).
        cls: the network class; keyword-only constructor that keeps its arguments in `hyperparameters`.
        presets: named configurations (constructor arguments without the scale), e.g. the released models; their
            names are the `plksr bench` labels.
        paper_presets: the presets the paper reports (their rows in the shipped tables).
        recognises: whether a state dict holds this architecture's weights (exactly one spec may say yes).
        read_config: the constructor arguments a state dict shows (`upscaling_factor` among them); raises
            ValueError naming what is missing.
        undetectable: constructor arguments the tensors cannot show (no weights of their own); assumed at their
            defaults, with a warning, for files that do not store their arguments.
        interchangeable: constructor arguments that do not change what trained weights compute at inference; a
            weights file may store another value than the option file that loads it.
        complete: completes the arguments read from a state dict (and the caller's overrides) where the tensors
            are ambiguous; ValueError saying what to pass when they cannot tell.
        reparameterises: the network has `convert()`, which folds training-time branches before inference.
        exports: the export routes it supports (`onnx`, `coreml`).
    """

    name: str
    cls: type[nn.Module]
    presets: Mapping[str, Mapping[str, Any]]
    recognises: Callable[[StateDict], bool]
    read_config: Callable[[StateDict, str], dict[str, Any]]
    paper_presets: tuple[str, ...] = ()
    undetectable: tuple[str, ...] = ()
    interchangeable: tuple[str, ...] = ()
    complete: Callable[[dict[str, Any]], dict[str, Any]] = dict
    reparameterises: bool = False
    exports: tuple[str, ...] = ("onnx",)
    defaults: Mapping[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parameters = inspect.signature(self.cls).parameters.values()
        object.__setattr__(self, "defaults", {p.name: p.default for p in parameters if p.default is not p.empty})

    def build(self, preset: str, scale: int) -> nn.Module:
        """The network of preset `preset` at `scale` (random weights)."""
        return self.cls(**self.presets[preset], upscaling_factor=scale)

    def preset_of(self, arguments: Mapping[str, Any]) -> str | None:
        """The preset whose configuration `arguments` (complete or not; the scale aside) is, or None."""
        given = {**self.defaults, **arguments}
        for preset, values in self.presets.items():
            if given == {**self.defaults, **values, "upscaling_factor": given.get("upscaling_factor")}:
                return preset
        return None


def global_skip_config(state: StateDict, name: str, network: str, block_key: str, tail_offset: int) -> dict[str, Any]:
    """dim, n_blocks and upscaling_factor of a `feats = [head conv, blocks..., (slots,) tail conv]` network whose
    blocks hold `block_key` (e.g. `.channe_mixer.`) and whose tail conv is `feats.<n_blocks + tail_offset>` with
    3 * s^2 outputs; ValueError naming `name` and what does not fit."""
    dim = required(state, "feats.0.weight", name, network).shape[0]
    blocks = {int(k.split(".")[1]) for k in state if k.startswith("feats.") and block_key in k}
    n_blocks = len(blocks)
    if blocks != set(range(1, n_blocks + 1)):
        raise ValueError(f"{name}: blocks {sorted(blocks)} are not numbered 1..{n_blocks}")
    tail = n_blocks + tail_offset
    out_channels = required(state, f"feats.{tail}.weight", name, network).shape[0]
    scale = math.isqrt(out_channels // 3)
    if 3 * scale**2 != out_channels:
        raise ValueError(f"{name}: feats.{tail} has {out_channels} outputs, not 3 x scale^2")
    return {"dim": dim, "n_blocks": n_blocks, "upscaling_factor": scale}


def required(state: StateDict, key: str, name: str, network: str) -> torch.Tensor:
    """`state[key]`, or ValueError naming `name` and the missing key."""
    if key not in state:
        raise ValueError(f"{name}: missing {key!r}: not a {network} state dict")
    return state[key]
