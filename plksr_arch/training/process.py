"""Process setup shared by the training and test pipelines (`load_options` itself has no side effects)."""

from __future__ import annotations


def start_process(opt: dict) -> None:
    """What a training or test process does once, before it builds anything: start torch.distributed for a launched
    run (`opt["launcher"]`; NCCL on CUDA, Gloo on CPUs), record its `rank` and `world_size` in `opt`, and seed
    every RNG with `manual_seed + rank`."""
    import torch
    from basicsr.utils import set_random_seed
    from basicsr.utils.dist_util import get_dist_info

    from plksr_arch.training.basicsr_fixes import init_dist

    if opt.get("dist") and not torch.distributed.is_initialized():
        init_dist(opt["launcher"], **{k: v for k, v in opt.get("dist_params", {}).items() if k != "port"})
    opt["rank"], opt["world_size"] = get_dist_info()
    set_random_seed(opt["manual_seed"] + opt["rank"])
