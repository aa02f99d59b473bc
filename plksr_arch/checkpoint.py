"""Read PLKSR weights in every common layout and rebuild the network from the tensors alone.

Layouts: BasicSR checkpoints (`{"params": ...}`, `{"params_ema": ...}`, both: EMA wins, logged), raw state dicts,
DataParallel/DDP `module.` prefixes, and `.safetensors` files. `.pth` files are read with `weights_only=True`, so
no arbitrary object is ever unpickled.

What the tensors tell (`detect_config`): dim (`feats.0`), n_blocks, the scale (`feats.<last>` has 3*s^2 outputs),
the channel mixer (kernel sizes of `channe_mixer.0/2`), the large kernel type and size and the split ratio (`lk.*`),
and EA (`attn.f.0`). What they cannot tell: `with_idt` (the identity branch has no weights; `convert()` folds it)
and the dilations of an unconverted SparsePLK: pass those to `load_model` as keyword arguments, unless the file was
written by `save_weights`, which stores the network's `hyperparameters` beside the weights.
"""

from __future__ import annotations

import json
import logging
import math
import os.path as osp
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .archs.plksr_arch import PLKSR
from .errors import UserError

logger = logging.getLogger("plksr")

StateDict = Mapping[str, torch.Tensor]
_MIXERS = {(3, 3): "DCCM", (3, 1): "CCM", (1, 3): "ICCM"}


class CheckpointError(UserError):
    """Weights that cannot be read or do not describe a PLKSR; the message names the file and the key."""


HYPERPARAMETERS = "hyperparameters"  # the key (torch files) or metadata entry (safetensors) `save_weights` adds


def read_state_dict(source: str | StateDict, *, param_key: str | None = None) -> dict[str, torch.Tensor]:
    """The network's state dict from a path (.pth/.pt/.ckpt or .safetensors) or an already loaded dict."""
    return read_checkpoint(source, param_key=param_key)[0]


def read_checkpoint(
    source: str | StateDict, *, param_key: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """(state dict, the network's hyperparameters if the file stores them) from a path or a loaded dict.

    BasicSR's `params_ema` is preferred over `params` unless `param_key` names one; `module.` prefixes are removed.
    """
    name = source if isinstance(source, str) else "state dict"
    hyperparameters = None
    if isinstance(source, str):
        if not osp.isfile(source):
            raise FileNotFoundError(f"{source}: no such weights file")
        if source.endswith(".safetensors"):
            from safetensors import safe_open
            from safetensors.torch import load_file

            data: Any = load_file(source)
            with safe_open(source, "pt") as f:
                stored = (f.metadata() or {}).get(HYPERPARAMETERS)
            hyperparameters = json.loads(stored) if stored else None
        else:
            try:
                data = torch.load(source, map_location="cpu", weights_only=True)
            except Exception as err:  # unpickling errors name neither the file nor the cause in one line
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                raise CheckpointError(
                    f"{source}: not a readable weights file ({type(err).__name__}: {first})"
                ) from None
    else:
        data = source
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{name}: expected a state dict, got {type(data).__name__}")
    if isinstance(data.get(HYPERPARAMETERS), Mapping):
        hyperparameters = dict(data[HYPERPARAMETERS])
    keys = [param_key] if param_key else ["params_ema", "params"]
    found = next((k for k in keys if isinstance(data.get(k), Mapping)), None)
    if param_key and found is None:
        raise CheckpointError(f"{name}: no '{param_key}' entry (has: {', '.join(map(str, data))})")
    if found:
        if found == "params_ema" and "params" in data:
            logger.info(f"{name}: using the EMA weights ('params_ema'); pass param_key='params' for the others")
        data = data[found]
    state = {}
    for key, value in data.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{name}: entry {key!r} is not a tensor (known layouts: params, params_ema, raw)")
        state[key.removeprefix("module.")] = value
    return state, hyperparameters


def detect_config(state: StateDict, name: str = "state dict") -> dict[str, Any]:
    """PLKSR keyword arguments (dim, n_blocks, upscaling_factor, ccm_type, kernel_size, split_ratio, lk_type,
    use_ea and the SparsePLK kernels) read from the tensors' names and shapes."""

    def get(key: str) -> torch.Tensor:
        if key not in state:
            raise CheckpointError(f"{name}: missing {key!r}: not a PLKSR state dict")
        return state[key]

    dim = get("feats.0.weight").shape[0]
    blocks = {int(k.split(".")[1]) for k in state if k.startswith("feats.") and ".channe_mixer." in k}
    n_blocks = len(blocks)
    if blocks != set(range(1, n_blocks + 1)):
        raise CheckpointError(f"{name}: PLK blocks {sorted(blocks)} are not numbered 1..{n_blocks}")
    out_channels = get(f"feats.{n_blocks + 1}.weight").shape[0]
    scale = math.isqrt(out_channels // 3)
    if 3 * scale**2 != out_channels:
        raise CheckpointError(f"{name}: feats.{n_blocks + 1} has {out_channels} outputs, not 3 x scale^2")
    config: dict[str, Any] = {"dim": dim, "n_blocks": n_blocks, "upscaling_factor": scale}
    if n_blocks == 0:
        return config
    block = "feats.1."
    mixer = (get(block + "channe_mixer.0.weight").shape[-1], get(block + "channe_mixer.2.weight").shape[-1])
    if mixer not in _MIXERS:
        raise CheckpointError(f"{name}: channel mixer kernels {mixer} match none of CCM, ICCM, DCCM")
    config["ccm_type"] = _MIXERS[mixer]
    config["use_ea"] = block + "attn.f.0.weight" in state
    if block + "lk.conv.weight" in state:
        weight = state[block + "lk.conv.weight"]
        config.update(lk_type="PLK", kernel_size=weight.shape[-1])
    elif block + "lk.mn_conv.weight" in state:
        weight = state[block + "lk.mn_conv.weight"]
        config.update(lk_type="RectSparsePLK", kernel_size=weight.shape[-2])
    elif block + "lk.convs.0.weight" in state:
        convs = sorted(
            (int(k.split(".")[4]), k) for k in state if k.startswith(block + "lk.convs.") and k.endswith(".weight")
        )
        sizes = [state[k].shape[-1] for _, k in convs]
        weight = state[block + "lk.convs.0.weight"]
        config.update(lk_type="SparsePLK", sparse_kernels=tuple(sizes))
    else:
        raise CheckpointError(f"{name}: block 1 has no large-kernel weights (lk.conv, lk.convs.*, lk.mn_conv)")
    config["split_ratio"] = weight.shape[0] / dim
    return config


def load_model(
    source: str | StateDict, *, param_key: str | None = None, convert: bool = True, **overrides: Any
) -> PLKSR:
    """A PLKSR in eval mode with `source`'s weights loaded strictly. Its configuration is the hyperparameters the
    file stores (`save_weights` writes them), else what the tensors tell (`detect_config`).

    `overrides` set what the tensors cannot tell (e.g. `sparse_dilations`, `with_idt`); `convert` re-parameterises
    for inference (a no-op for PLK). Raises CheckpointError naming the file and the mismatching keys.
    """
    name = source if isinstance(source, str) else "state dict"
    state, stored = read_checkpoint(source, param_key=param_key)
    config = {**(stored or detect_config(state, name)), **overrides}
    if stored is None and config.get("lk_type") == "SparsePLK" and "sparse_dilations" not in overrides:
        raise CheckpointError(
            f"{name}: an unconverted SparsePLK checkpoint does not store its dilations: "
            "pass sparse_dilations=(...) (and use_max_kernel, kernel_size) to load_model"
        )
    if (
        stored is None
        and config.get("lk_type") == "SparsePLK"
        and len(config["sparse_dilations"]) != len(config["sparse_kernels"])
    ):
        config["use_max_kernel"] = True
        config["sparse_kernels"] = config["sparse_kernels"][:-1]
    model = PLKSR(**config)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise CheckpointError(
            f"{name}: weights do not fit PLKSR({config}): {str(err).splitlines()[-1].strip()}"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{name}: weights do not match PLKSR({config}): missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    model.eval()
    return model.convert() if convert else model


def save_weights(model: nn.Module, path: str, param_key: str = "params") -> None:
    """Save `model`'s weights in BasicSR's layout (`{param_key: state_dict}`), or as safetensors by extension, with
    the network's `hyperparameters` (a `hyperparameters` entry, or safetensors metadata) when it has them, so
    `load_model` rebuilds it exactly (with_idt and SparsePLK's dilations are not in the tensors)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    hyperparameters = getattr(model, HYPERPARAMETERS, None)
    if path.endswith(".safetensors"):
        from safetensors.torch import save_file

        metadata = {HYPERPARAMETERS: json.dumps(hyperparameters)} if hyperparameters else None
        save_file(state, path, metadata=metadata)
    else:
        torch.save({param_key: state, **({HYPERPARAMETERS: hyperparameters} if hyperparameters else {})}, path)
