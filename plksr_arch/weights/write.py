"""The one weights writer: every file plksr-arch writes (training's `net_g_*.pth`, EMA, `net_d`, `plksr convert`,
the demos) goes through `write_weights`, which stores the architecture's registry name and its complete constructor
arguments (`network_arguments`) beside the usual `params`/`params_ema`; stock BasicSR and spandrel still load it.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from plksr_arch.weights.read import ARCHITECTURE, HYPERPARAMETERS, CheckpointError, error_detail, normalised


def write_torch_file(obj: Any, path: str) -> None:
    """`torch.save(obj, path)` through a Python file, so a failing write (disk full, file too large) raises the
    OSError naming `path` instead of torch's "unexpected pos" RuntimeError."""
    try:
        with open(path, "wb") as f:
            torch.save(obj, f)
    except RuntimeError as err:
        cause = err.__context__
        if isinstance(cause, OSError):
            raise OSError(cause.errno, cause.strerror, path) from None
        raise


def network_arguments(net: nn.Module, spec: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]] | None:
    """(registry name, complete constructor arguments) of a built network: what it keeps in `hyperparameters` (ours),
    else its option-file `spec` (`{type: ..., **kwargs}`) with the constructor's plain defaults filled in; None for a
    foreign network without a spec."""
    own = getattr(net, HYPERPARAMETERS, None)
    if isinstance(own, Mapping):
        return type(net).__name__, dict(own)
    if spec is None:
        return None
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    defaults = {
        p.name: p.default
        for p in inspect.signature(type(net)).parameters.values()
        if p.default is not p.empty and _plain(p.default)
    }
    return str(spec["type"]), {**defaults, **kwargs}


def _plain(value: Any) -> bool:
    """Whether `value` is YAML-like data (what weights_only loading and JSON metadata accept)."""
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return value is None or isinstance(value, (bool, int, float, str))


def write_weights(
    path: str,
    weights: Mapping[str, Mapping[str, torch.Tensor]],
    arguments: tuple[str, Mapping[str, Any]] | None,
    *,
    half: bool = False,
) -> None:
    """The one writer of weights files: `{param_key: state_dict, ...}` in BasicSR's layout (`.pth`), or one weight set
    as `.safetensors`, with the architecture's registry name and complete constructor arguments (`arguments`, from
    `network_arguments`) as `architecture`/`hyperparameters` entries (safetensors: metadata). `half` stores
    floating-point tensors as fp16. Raises the OSError naming `path` when the write fails."""
    sets = {
        key: {
            k.removeprefix("module."): (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
            for k, v in state.items()
        }
        for key, state in weights.items()
    }
    stored: dict[str, Any] = {}
    if arguments is not None:
        stored = {ARCHITECTURE: arguments[0], HYPERPARAMETERS: {k: normalised(v) for k, v in arguments[1].items()}}
    if not path.endswith(".safetensors"):
        write_torch_file({**sets, **stored}, path)
        return
    if len(sets) != 1:
        raise CheckpointError(f"{path}: a .safetensors file holds one weight set, not {', '.join(sets)}")
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    metadata = (
        {ARCHITECTURE: stored[ARCHITECTURE], HYPERPARAMETERS: json.dumps(stored[HYPERPARAMETERS])} if stored else None
    )
    try:
        save_file(next(iter(sets.values())), path, metadata=metadata)
    except SafetensorError as err:  # its I/O errors are not OSErrors
        raise CheckpointError(f"{path}: cannot write ({error_detail(err)})") from None


def save_weights(model: nn.Module, path: str, param_key: str = "params", half: bool = False) -> None:
    """Save one network's weights with `write_weights` (`{param_key: state_dict}`, or safetensors by extension), with
    its architecture and `hyperparameters`, so `load_model` rebuilds it exactly (with_idt, SparsePLK's dilations and
    RealPLKSR's norm_groups are not in the tensors)."""
    write_weights(path, {param_key: model.state_dict()}, network_arguments(model), half=half)
