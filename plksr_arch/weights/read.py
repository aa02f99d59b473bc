"""Read weights in every common layout and rebuild the network, from what the file stores or from the tensors.

Layouts: BasicSR / traiNNer-redux checkpoints (`{"params": ...}`, `{"params_ema": ...}`, both: EMA wins, logged),
neosr's (`params-ema`), raw state dicts, `module.` (DataParallel/DDP) and `netG.` prefixes, and `.safetensors` files.
`.pth` files are read with `weights_only=True`, so no arbitrary object is ever unpickled.

Which network, and its arguments: every file plksr-arch writes goes through `weights.write`, which stores the
architecture's registry name and its complete constructor arguments
beside the usual `params`/`params_ema` (stock BasicSR and spandrel still load it): without an option file
(`load_model`) they build the network; with one (`load_into`, as PLKSRModel loads pretrained networks) a stored
argument that disagrees with the option file is an error naming it. A file without them (the official releases,
other trainers) is read through `archs.registry`: the one spec that recognises the tensors (PLKSR's blocks have
`channe_mixer`, the official typo; RealPLKSR's `channel_mixer`) reads their arguments, and what the tensors cannot
show (the spec's `undetectable`: PLKSR's `with_idt`, RealPLKSR's `norm_groups`) is assumed with one warning line
naming the override; an unconverted SparsePLK's dilations must be given.
"""

from __future__ import annotations

import json
import logging
import os.path as osp
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import nn

from plksr_arch.archs import registry
from plksr_arch.archs.spec import ArchSpec
from plksr_arch.errors import UserError

logger = logging.getLogger("plksr")


StateDict = Mapping[str, torch.Tensor]


class CheckpointError(UserError):
    """Weights that cannot be read or do not describe a PLKSR; the message names the file and the key."""


HYPERPARAMETERS = "hyperparameters"  # the key (torch files) or metadata entry (safetensors) `save_weights` adds


ARCHITECTURE = "architecture"  # the same for the network's class name


PARAM_KEYS = ("params_ema", "params-ema", "params")  # EMA first: BasicSR/traiNNer-redux, neosr, plain


PREFIXES = ("module.", "netG.")


class Checkpoint(NamedTuple):
    """A read weights file: the network's state dict and, when the file stores them, its architecture name and
    hyperparameters."""

    state: dict[str, torch.Tensor]
    hyperparameters: dict[str, Any] | None = None
    architecture: str | None = None


def read_state_dict(source: str | StateDict, *, param_key: str | None = None) -> dict[str, torch.Tensor]:
    """The network's state dict from a path (.pth/.pt/.ckpt or .safetensors) or an already loaded dict."""
    return read_checkpoint(source, param_key=param_key).state


# What the first bytes of a file say it is: a PyTorch zip archive (torch.save), or a pickle (legacy torch.save,
# pickle.dump: protocol 2 and later start with the PROTO opcode).
ZIP_MAGIC = b"PK\x03\x04"


PICKLE_PROTO = b"\x80"


def read_torch_file(path: str, what: str = "weights") -> Any:
    """`torch.load(path, weights_only=True)` mapped to the CPU, with one-line CheckpointErrors naming the file.

    weights_only reading never imports or calls anything, so a file that pickles more than tensors and plain
    containers (a payload such as `os.system`) is refused unread, with what it would have called; a cut or foreign
    file is named as such. `what` names the kind of file in the messages ("weights", "training state").
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f"{path}: no such {what} file")
    with open(path, "rb") as f:
        head = f.read(4)
    if not (head.startswith(ZIP_MAGIC) or head.startswith(PICKLE_PROTO)):
        raise CheckpointError(f"{path}: not a PyTorch {what} file (it starts with {head!r})")
    try:
        with warnings.catch_warnings():  # torch notes the pickle protocol of files written by pickle.dump
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        call = re.search(r"GLOBAL (\S+)", str(err))
        found = f"it would call {call.group(1)}" if call else error_detail(err)
        raise CheckpointError(
            f"{path}: refused: it pickles Python objects besides tensors ({found}); nothing in it was run"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as err:  # a cut archive or pickle stream
        cut = head.startswith(ZIP_MAGIC) and not zipfile.is_zipfile(path)
        detail = "an incomplete zip archive: no central directory" if cut else error_detail(err)
        raise CheckpointError(
            f"{path}: truncated or corrupt {what} file ({osp.getsize(path):,d} bytes, {detail}); re-save or "
            "re-download it"
        ) from None


def error_detail(err: BaseException) -> str:
    """The informative line of torch's multi-paragraph load errors."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Weights only load failed", "Check the documentation"))]
    text = (useful or lines or [type(err).__name__])[-1]
    return text.split(". ")[0].rstrip(".")


def _read_safetensors(path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a .safetensors file; CheckpointError naming the file when its header is invalid."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, "pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}  # noqa: SIM118 (not a dict)
    except SafetensorError as err:
        raise CheckpointError(f"{path}: not a valid safetensors file ({error_detail(err)})") from None


def _load(source: str | StateDict) -> tuple[Mapping, dict[str, Any]]:
    """The file's (or dict's) top-level mapping and what it stores besides weights (architecture, hyperparameters)."""
    name = source if isinstance(source, str) else "state dict"
    stored: dict[str, Any] = {}
    if isinstance(source, str):
        if not osp.isfile(source):
            raise FileNotFoundError(f"{source}: no such weights file")
        if source.endswith(".safetensors"):
            data, metadata = _read_safetensors(source)
            if metadata.get(HYPERPARAMETERS):
                stored[HYPERPARAMETERS] = json.loads(metadata[HYPERPARAMETERS])
            if metadata.get(ARCHITECTURE):
                stored[ARCHITECTURE] = metadata[ARCHITECTURE]
        else:
            data = read_torch_file(source)
    else:
        data = source
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{name}: expected a state dict, got {type(data).__name__}")
    if isinstance(data.get(HYPERPARAMETERS), Mapping):
        stored[HYPERPARAMETERS] = dict(data[HYPERPARAMETERS])
    if isinstance(data.get(ARCHITECTURE), str):
        stored[ARCHITECTURE] = data[ARCHITECTURE]
    return data, stored


def ema_key(source: str, ema: bool) -> str:
    """The entry of a checkpoint holding its EMA weights (`params_ema`, neosr's `params-ema`) or, with `ema=False`,
    its plain ones (`params`); CheckpointError naming the file and its entries when it has none."""
    data, _ = _load(source)
    wanted = [k for k in PARAM_KEYS if k != "params"] if ema else ["params"]
    found = next((k for k in wanted if isinstance(data.get(k), Mapping)), None)
    if found is None:
        entries = ", ".join(k for k in map(str, data) if isinstance(data.get(k), Mapping)) or "none: raw weights"
        raise CheckpointError(f"{source}: no {' or '.join(wanted)} entry (weight sets: {entries})")
    return found


def read_checkpoint(source: str | StateDict, *, param_key: str | None = None) -> Checkpoint:
    """The state dict, and the architecture and hyperparameters if the file stores them, from a path or a dict.

    The EMA weights (`params_ema`, neosr's `params-ema`) are preferred over `params` unless `param_key` names one;
    `module.` and `netG.` prefixes are removed.
    """
    data, stored = _load(source)
    state = _state(data, source if isinstance(source, str) else "state dict", param_key)
    return Checkpoint(state, stored.get(HYPERPARAMETERS), stored.get(ARCHITECTURE))


def _state(data: Mapping, name: str, param_key: str | None) -> dict[str, torch.Tensor]:
    """The tensors of `data`'s `param_key` entry (None: the first of PARAM_KEYS present, else `data` itself),
    without DataParallel/netG prefixes."""
    keys = [param_key] if param_key else list(PARAM_KEYS)
    found = next((k for k in keys if isinstance(data.get(k), Mapping)), None)
    if param_key and found is None:
        raise CheckpointError(f"{name}: no '{param_key}' entry (has: {', '.join(map(str, data))})")
    if found:
        if found != "params" and "params" in data:
            logger.info(f"{name}: using the EMA weights ('{found}'); pass param_key='params' for the others")
        data = data[found]
    state = {}
    for key, value in data.items():
        if key in (HYPERPARAMETERS, ARCHITECTURE):
            continue
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{name}: entry {key!r} is not a tensor (known layouts: {', '.join(PARAM_KEYS)}, raw)"
            )
        state[key] = value
    for prefix in PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def load_into(
    net: nn.Module,
    path: str,
    *,
    param_key: str | None = "params",
    strict: bool = True,
    arguments: tuple[str, dict[str, Any]] | None = None,
    log: logging.Logger = logger,
) -> None:
    """Load the weights file `path` into `net`, as BasicSR's `load_network` (`param_key` entry, `params` when the
    file has no such entry, logged; `module.` prefixes removed), read with `read_torch_file` and checked first.

    `arguments` (the registry name and constructor arguments `net` was built with, see `network_arguments`) are
    compared with what the file stores: a CheckpointError names the first that disagrees. Strict: a CheckpointError
    naming the first key whose shape differs (file and network shapes), or the first missing and unexpected keys,
    with what the file holds when it is a PLKSR/RealPLKSR. Not strict: keys that are missing, unexpected or of
    another shape are skipped and logged (to `log`), as BasicSR does.
    """
    data, stored = _load(path)
    if arguments is not None:
        _check_stored(path, stored, *arguments)
    if param_key is not None and not isinstance(data.get(param_key), Mapping):
        fallback = "params" if isinstance(data.get("params"), Mapping) else None
        log.info(f"{path}: no '{param_key}' entry: loading {repr(fallback) if fallback else 'what it holds'}")
        param_key = fallback
    state = _state(data, path, param_key)
    own = net.state_dict()
    reshaped = [k for k in own if k in state and state[k].shape != own[k].shape]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    network = type(net).__name__
    if strict and (reshaped or missing or unexpected):
        if reshaped:
            key = reshaped[0]
            problem = f"{key} is {list(state[key].shape)} in the file, {list(own[key].shape)} in the network"
        else:
            problem = ", ".join(
                f"{len(keys)} {kind} (first {keys[0]})"
                for kind, keys in (("missing", missing), ("unexpected", unexpected))
                if keys
            )
        raise CheckpointError(f"{path}: weights do not fit {network}: {problem}{_holds(state)}")
    for kind, keys in (("another shape", reshaped), ("missing", missing), ("unexpected", unexpected)):
        if keys:
            skipped = ", ".join(keys[:5])
            log.warning(f"{path}: not strict: {len(keys)} key(s) of {network} skipped, {kind}: {skipped}")
    net.load_state_dict({k: v for k, v in state.items() if k not in reshaped}, strict=False)


def normalised(value: Any) -> Any:
    """Sequences as tuples (YAML lists and stored tuples compare equal), recursively."""
    if isinstance(value, (list, tuple)):
        return tuple(normalised(v) for v in value)
    return value


def _check_stored(path: str, stored: dict[str, Any], architecture: str, arguments: Mapping[str, Any]) -> None:
    """CheckpointError naming the stored architecture or the first stored constructor argument that differs from
    the network's (the spec's `interchangeable` ones may differ)."""
    name = stored.get(ARCHITECTURE)
    if name is not None and name != architecture:
        raise CheckpointError(
            f"{path}: stores the weights of a {name}, but the network to load them is a {architecture}"
        )
    spec = registry.spec_named(architecture)
    free = spec.interchangeable if spec else ()
    for key, value in (stored.get(HYPERPARAMETERS) or {}).items():
        if key in arguments and key not in free and normalised(value) != normalised(arguments[key]):
            raise CheckpointError(
                f"{path}: was saved from a {architecture} with {key}={value!r}, but the network built from the options "
                f"has {key}={arguments[key]!r}: set {key}: {value!r} in its options (or load weights of that network)"
            )


def _holds(state: StateDict) -> str:
    """'; the file holds a PLKSR x4 (dim 64, 28 blocks)' when the tensors describe one, else ''."""
    try:
        architecture = detect_architecture(state)
        config = detect_config(state, architecture=architecture)
    except CheckpointError:
        return ""
    return (
        f"; the file holds a {architecture} x{config['upscaling_factor']} "
        f"(dim {config['dim']}, {config['n_blocks']} blocks)"
    )


def detect_architecture(state: StateDict, name: str = "state dict") -> str:
    """The name of the one architecture of `archs.registry` that recognises `state`."""
    return _recognise(state, name).name


def _recognise(state: StateDict, name: str) -> ArchSpec:
    try:
        return registry.recognise(state, name)
    except ValueError as err:
        raise CheckpointError(str(err)) from None


def detect_config(state: StateDict, name: str = "state dict", architecture: str = "PLKSR") -> dict[str, Any]:
    """Keyword arguments of `architecture` read from the tensors' names and shapes (its spec's `read_config`)."""
    spec = registry.spec_named(architecture)
    if spec is None:
        raise CheckpointError(f"{name}: architecture {architecture!r} is not one of {', '.join(registry.names())}")
    try:
        return spec.read_config(state, name)
    except ValueError as err:
        raise CheckpointError(str(err)) from None


def load_model(
    source: str | StateDict, *, param_key: str | None = None, convert: bool = True, **overrides: Any
) -> nn.Module:
    """A network of `archs.registry` in eval mode with `source`'s weights loaded strictly. The architecture and
    configuration are what the file stores (`save_weights` writes them), else what the tensors tell (the spec that
    recognises them, and its `read_config`).

    `overrides` set constructor arguments, above all what the tensors cannot tell (e.g. `sparse_dilations`,
    `with_idt`, `norm_groups`; the commands' `--arch-opt KEY=VALUE`); for a file without stored arguments, each of
    the spec's `undetectable` that is not overridden is assumed at its default with one warning line. `convert`
    re-parameterises a network whose spec says so (PLKSR; a no-op for PLK). Raises CheckpointError naming the file
    and the mismatching keys or the argument at fault.
    """
    name = source if isinstance(source, str) else "state dict"
    state, stored, architecture = read_checkpoint(source, param_key=param_key)
    spec = registry.spec_named(architecture) if architecture else _recognise(state, name)
    if spec is None:
        raise CheckpointError(f"{name}: architecture {architecture!r} is not one of {', '.join(registry.names())}")
    for key in overrides:
        if key not in spec.defaults:
            known = ", ".join(spec.defaults)
            raise CheckpointError(f"{name}: {spec.name} has no argument {key!r} (its arguments: {known})")
    if stored is None:
        for key in spec.undetectable:
            if key not in overrides:
                logger.warning(
                    f"{name}: stores no constructor arguments and its weights cannot show {key}: "
                    f"{key}={spec.defaults[key]!r} assumed; if it was trained with another value, pass --arch-opt "
                    f"{key}=VALUE ({key}=... in Python)"
                )
    config = {**(stored or detect_config(state, name, spec.name)), **overrides}
    try:
        config = config if stored else spec.complete(config)
        model = spec.cls(**config)
    except ValueError as err:  # what the tensors cannot tell, or an invalid argument, named
        raise CheckpointError(f"{name}: {err}") from None
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise CheckpointError(
            f"{name}: weights do not fit {spec.name}({config}): {str(err).splitlines()[-1].strip()}"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{name}: weights do not match {spec.name}({config}): missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    model.eval()
    return model.convert() if convert and spec.reparameterises else model
