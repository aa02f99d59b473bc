"""Seconds per training step of PLKSR-tiny x4 (batch 8, 48 px LR patches, Adam, L1) through PLKSRModel, for the
AMP settings of the option files: `use_amp: false`, `use_amp: true` with `amp_dtype` auto, fp16 (the official files)
and bf16. Shows what the runtime's `auto` rule picks on this machine and what forcing bf16 costs where it is emulated.

    python benchmarks/training_step.py [--steps 4] [--bf16-steps 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

SETTINGS = {
    "use_amp: false": {},
    "use_amp: true (amp_dtype auto)": {"use_amp": True},
    "use_amp: true, amp_dtype: fp16 (official files)": {"use_amp": True, "amp_dtype": "fp16"},
    "use_amp: true, amp_dtype: bf16": {"use_amp": True, "amp_dtype": "bf16"},
}


def build(root: Path, **top) -> object:
    """A PLKSRModel for PLKSR-tiny x4 on the CPU, through BasicSR's build_model and our option validation."""
    from basicsr.models import build_model

    from plksr_arch.training.options import load_options

    for folder, size in (("GT", 192), ("LR", 48)):
        (root / folder).mkdir(exist_ok=True)
        cv2.imwrite(str(root / folder / "a.png"), np.zeros((size, size, 3), np.uint8))
    opt = {
        "name": "training_step",
        "model_type": "PLKSRModel",
        "scale": 4,
        "num_gpu": 0,
        "manual_seed": 0,
        "datasets": {
            "train": {
                **{"name": "step", "type": "PairedImageDataset", "filename_tmpl": "{}", "io_backend": {"type": "disk"}},
                **{"dataroot_gt": str(root / "GT"), "dataroot_lq": str(root / "LR"), "gt_size": 192},
                "batch_size_per_gpu": 8,
            }
        },
        "network_g": {"type": "PLKSR", "dim": 64, "n_blocks": 12, "kernel_size": 13, "use_ea": False},
        "path": {},
        "train": {
            "optim_g": {"type": "Adam", "lr": 2e-4, "betas": [0.9, 0.99]},
            "scheduler": {"type": "MultiStepLR", "milestones": [1000], "gamma": 0.5},
            "total_iter": 10,
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0},
        },
        "logger": {"print_freq": 1, "save_checkpoint_freq": 100},
        **top,
    }
    (root / "opt.yml").write_text(yaml.safe_dump(opt))
    return build_model(load_options(str(root / "opt.yml"), is_train=True, root=str(root)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per setting (after one warm-up step)")
    parser.add_argument("--bf16-steps", type=int, default=1, help="timed steps for bf16 (slow where emulated)")
    args = parser.parse_args()

    from plksr_arch.runtime.device import describe

    print(f"{describe(torch.device('cpu'))}, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    batch = {"lq": torch.rand(8, 3, 48, 48), "gt": torch.rand(8, 3, 192, 192)}
    with tempfile.TemporaryDirectory() as tmp:
        for label, top in SETTINGS.items():
            model = build(Path(tmp), **top)
            steps = args.bf16_steps if top.get("amp_dtype") == "bf16" else args.steps
            times = []
            for _ in range(steps + 1):
                start = time.perf_counter()
                model.feed_data(batch)
                model.optimize_parameters(1)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times[1:])
            print(f"{label}: {seconds:.2f} s/step (median of {steps}; autocast: {model.amp_dtype or 'off, fp32'})")


if __name__ == "__main__":
    main()
