"""The one list of architectures (`SPECS`) and the look-ups every other part of the package makes in it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from plksr_arch.archs import plksr_spec, realplksr_spec
from plksr_arch.archs.spec import ArchSpec, StateDict

SPECS: list[ArchSpec] = [plksr_spec.SPEC, realplksr_spec.SPEC]


def names() -> list[str]:
    """The registry names, in the list's order."""
    return [spec.name for spec in SPECS]


def spec_named(name: str) -> ArchSpec | None:
    return next((spec for spec in SPECS if spec.name == name), None)


def spec_of(network: nn.Module) -> ArchSpec | None:
    """The spec of a built network (by class), or None for another network."""
    return next((spec for spec in SPECS if type(network) is spec.cls), None)


def recognise(state: StateDict, name: str = "state dict") -> ArchSpec:
    """The one spec whose weights `state` holds; ValueError naming `name` when none (or several) recognise it."""
    found = [spec for spec in SPECS if spec.recognises(state)]
    if len(found) != 1:
        which = " and ".join(spec.name for spec in found) if found else "none"
        raise ValueError(f"{name}: not the weights of one of {', '.join(names())} (recognised: {which})")
    return found[0]


def presets() -> dict[str, ArchSpec]:
    """Every preset of every spec (its name is its label in `plksr bench`) -> its spec."""
    return {preset: spec for spec in SPECS for preset in spec.presets}


def paper_preset_of(network: Mapping[str, Any] | nn.Module) -> str | None:
    """The paper's preset (e.g. 'PLKSR-tiny') a network is: a `network_g` mapping or a built network."""
    if isinstance(network, Mapping):
        spec, arguments = spec_named(str(network.get("type"))), {k: v for k, v in network.items() if k != "type"}
    else:
        spec, arguments = spec_of(network), getattr(network, "hyperparameters", {})
    if spec is None:
        return None
    preset = spec.preset_of(arguments)
    return preset if preset in spec.paper_presets else None
