"""PLKSR's spec: the released presets, how its weights are recognised and read, what they cannot show."""

from __future__ import annotations

from typing import Any

from plksr_arch.archs.plksr_arch import PLKSR, PRESETS
from plksr_arch.archs.spec import ArchSpec, StateDict, global_skip_config, required

MIXERS = {(3, 3): "DCCM", (3, 1): "CCM", (1, 3): "ICCM"}  # kernel sizes of channe_mixer.0 and .2


def recognises(state: StateDict) -> bool:
    """PLKSR's blocks hold `channe_mixer` (the official typo); without blocks, its tail conv is `feats.1`."""
    if any(".channel_mixer." in k for k in state):
        return False
    return any(".channe_mixer." in k for k in state) or "feats.1.weight" in state


def read_config(state: StateDict, name: str) -> dict[str, Any]:
    """dim, n_blocks, upscaling_factor, ccm_type (the channel mixer's kernel sizes), lk_type, kernel_size,
    split_ratio and use_ea; for an unconverted SparsePLK its kernels (`sparse_kernels`: the dilations are not in the
    tensors)."""
    config = global_skip_config(state, name, "PLKSR", ".channe_mixer.", tail_offset=1)
    if config["n_blocks"] == 0:
        return config
    block = "feats.1."
    config["use_ea"] = block + "attn.f.0.weight" in state
    mixer = tuple(required(state, f"{block}channe_mixer.{i}.weight", name, "PLKSR").shape[-1] for i in (0, 2))
    if mixer not in MIXERS:
        raise ValueError(f"{name}: channel mixer kernels {mixer} match none of CCM, ICCM, DCCM")
    config["ccm_type"] = MIXERS[mixer]
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
        weight = state[block + "lk.convs.0.weight"]
        config.update(lk_type="SparsePLK", sparse_kernels=tuple(state[k].shape[-1] for _, k in convs))
    else:
        raise ValueError(f"{name}: block 1 has no large-kernel weights (lk.conv, lk.convs.*, lk.mn_conv)")
    config["split_ratio"] = weight.shape[0] / config["dim"]
    return config


def complete(config: dict[str, Any]) -> dict[str, Any]:
    """An unconverted SparsePLK's dilations are not in the tensors: they must be given (`sparse_dilations`); one
    more kernel than dilations is the dense k_max x k_max conv (`use_max_kernel`)."""
    if config.get("lk_type") != "SparsePLK":
        return config
    if "sparse_dilations" not in config:
        raise ValueError(
            "an unconverted SparsePLK checkpoint does not store its dilations: "
            "pass sparse_dilations=(...) (and use_max_kernel, kernel_size) to load_model"
        )
    if len(config["sparse_dilations"]) != len(config["sparse_kernels"]):
        config = {**config, "use_max_kernel": True, "sparse_kernels": config["sparse_kernels"][:-1]}
    return config


SPEC = ArchSpec(
    name="PLKSR",
    cls=PLKSR,
    presets=PRESETS,
    paper_presets=tuple(PRESETS),
    recognises=recognises,
    read_config=read_config,
    complete=complete,
    undetectable=("with_idt",),  # the identity branch has no weights (`convert()` folds it)
    interchangeable=("is_coreml",),  # the global skip in Core ML ops: the same values
    reparameterises=True,
    exports=("onnx", "coreml"),
)
