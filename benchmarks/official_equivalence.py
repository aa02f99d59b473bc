"""Do three trainers step alike? The official one (dslisleedh/PLKSR: its PLKSR and `ESRModel`, from a checkout you
name), BasicSR's own `SRModel` with our PLKSR (the baseline of `plksr bench --train`), and `PLKSRModel` with
`exact: true` (`plksr train --exact`). The option dict is the official PLKSR-tiny x4 schema (`use_amp: true`) on the
CPU. Each trainer runs in its own process from the same seed on the same random batches; the weights after the
steps are compared bit for bit, and against PLKSRModel's default routes (in fp32) to rounding.

    python benchmarks/official_equivalence.py --official /path/to/PLKSR [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import torch

ROLES = ("official", "srmodel", "exact", "default")
NETWORK = {"type": "PLKSR", "dim": 64, "n_blocks": 12, "kernel_size": 13, "split_ratio": 0.25, "ccm_type": "DCCM",
           "lk_type": "PLK", "use_ea": False, "upscaling_factor": 4}  # fmt: skip


def options(model_type: str, **top) -> dict:
    return {
        "name": "equivalence", "model_type": model_type, "scale": 4, "num_gpu": 0, "manual_seed": 0, "is_train": True,
        "dist": False, "rank": 0, "world_size": 1, "use_amp": True, "network_g": dict(NETWORK),
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {"optim_g": {"type": "Adam", "lr": 2e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
                  "scheduler": {"type": "MultiStepLR", "milestones": [100000], "gamma": 0.5},
                  "total_iter": 100, "warmup_iter": -1,
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"}},
        **top,
    }  # fmt: skip


def run_role(role: str, official: str, steps: int, out: str) -> None:
    """One trainer, `steps` steps on seeded random 4 x 48 px batches; its net_g state dict saved to `out`."""
    if role == "official":
        import torchvision.transforms.functional as functional

        sys.modules["torchvision.transforms.functional_tensor"] = functional  # what BasicSR needs to import
        sys.path.insert(0, official)
        import plksr.archs  # noqa: F401  (registers the official PLKSR)
        import plksr.models  # noqa: F401  (registers ESRModel)

        opt = options("ESRModel")
    else:
        import plksr_arch  # noqa: F401  (registers ours)

        opt = options({"srmodel": "SRModel", "exact": "PLKSRModel", "default": "PLKSRModel"}[role])
        opt["exact"] = role == "exact"
        opt["use_amp"] = role != "default"  # the default routes in fp32 (AMP would be bf16 on some CPUs)
    from basicsr.models import build_model
    from basicsr.utils import set_random_seed

    set_random_seed(0)
    model = build_model(opt)
    gen = torch.Generator().manual_seed(1)
    for i in range(steps):
        lq = torch.rand(4, 3, 48, 48, generator=gen)
        model.feed_data({"lq": lq, "gt": torch.rand(4, 3, 192, 192, generator=gen)})
        model.optimize_parameters(i + 1)
    torch.save(model.get_bare_model(model.net_g).state_dict(), out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", required=True, help="a checkout of github.com/dslisleedh/PLKSR")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--role", choices=ROLES, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        run_role(args.role, args.official, args.steps, args.out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        states = {}
        for role in ROLES:
            out = os.path.join(tmp, f"{role}.pth")
            command = [sys.executable, __file__, "--official", args.official, "--steps", str(args.steps)]
            subprocess.run([*command, "--role", role, "--out", out], check=True)
            states[role] = torch.load(out, weights_only=True)
    reference = states["official"]
    for role in ROLES[1:]:
        same = all(torch.equal(states[role][k], v) for k, v in reference.items())
        worst = max(((states[role][k] - v).norm() / v.norm()).item() for k, v in reference.items())
        print(
            f"{role:<8} vs official after {args.steps} steps: bit-identical {same}, max relative difference {worst:.2e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
