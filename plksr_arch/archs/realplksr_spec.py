"""RealPLKSR's spec: how its weights are recognised and read, what they cannot show."""

from __future__ import annotations

from typing import Any

from plksr_arch.archs.realplksr_arch import RealPLKSR
from plksr_arch.archs.spec import ArchSpec, StateDict, global_skip_config, required


def recognises(state: StateDict) -> bool:
    """RealPLKSR's blocks hold `channel_mixer`; without blocks, its tail conv is `feats.2` (a dropout slot is
    `feats.1`)."""
    if any(".channe_mixer." in k for k in state):
        return False
    return any(".channel_mixer." in k for k in state) or ("feats.2.weight" in state and "feats.1.weight" not in state)


def read_config(state: StateDict, name: str) -> dict[str, Any]:
    """dim, n_blocks, upscaling_factor, dysample and layer_norm; with blocks, use_ea, kernel_size and split_ratio."""
    config = global_skip_config(state, name, "RealPLKSR", ".channel_mixer.", tail_offset=2)
    block = "feats.1."
    config.update(dysample="to_img.init_pos" in state, layer_norm=block + "layer_norm.weight" in state)
    if config["n_blocks"] == 0:
        return config
    weight = required(state, block + "lk.conv.weight", name, "RealPLKSR")
    config.update(
        use_ea=block + "attn.f.0.weight" in state,
        kernel_size=weight.shape[-1],
        split_ratio=weight.shape[0] / config["dim"],
    )
    return config


SPEC = ArchSpec(
    name="RealPLKSR",
    cls=RealPLKSR,
    presets={"RealPLKSR": {}},  # as neosr and traiNNer-redux ship it: the constructor's defaults
    recognises=recognises,
    read_config=read_config,
    undetectable=("norm_groups",),  # GroupNorm has the same tensors for any group count
    interchangeable=("dropout",),  # training only
    exports=("onnx", "coreml"),
)
