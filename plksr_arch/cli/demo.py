"""`plksr demo`: the embedded default: train a PLKSR on scikit-image's photos, test it against bicubic; `--real`:
RealPLKSR on degraded photos (Real-ESRGAN's degradations), tested on degraded held-out photos."""

from __future__ import annotations

import argparse
import glob
import os.path as osp
import sys
import time

from plksr_arch.errors import UserError

# What `plksr demo` loads; `cli.main` loads it first, holding Ctrl-C until it is loaded.
LIBRARIES = (
    "plksr_arch.training.demo_pipeline",
    "plksr_arch.training.train_pipeline",
    "plksr_arch.training.test_pipeline",
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="train and test PLKSR on embedded photos (no data, no network)")
    parser.add_argument("--workdir", default="plksr_demo", help="where data, experiments and results go")
    parser.add_argument("--scale", type=int, choices=[2, 3, 4], default=4, help="upscaling factor")
    parser.add_argument("--minutes", type=float, default=7.0, help="training time budget in minutes")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's, one per core)")
    parser.add_argument(
        "--real",
        action="store_true",
        help="real-world: the network of demo_real.yml trained on inputs blurred, resized, noised and JPEG-compressed "
        "on the fly",
    )


def run(args: argparse.Namespace) -> int:
    if args.minutes <= 0:
        raise UserError(f"--minutes {args.minutes}: must be > 0")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads}: must be >= 1")
    if args.real and args.scale == 3:
        raise UserError("--scale 3: --real supports x2 and x4 (Real-ESRGAN's degradation)")
    import torch

    from plksr_arch.evaluation.report import format_table
    from plksr_arch.training.demo_pipeline import psnr_gain, run_demo

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.time()
    report, plan = run_demo(args.workdir, scale=args.scale, minutes=args.minutes, real=args.real)
    print(format_table(report))
    results = osp.join(args.workdir, "results", report["name"])
    print(f"Metrics: {osp.join(results, 'metrics.json')}  (demo took {time.time() - start:.0f} s)")
    if args.real:
        strips = sorted(glob.glob(osp.join(results, "visualization", "*", "*_strip.png")))
        print(f"Strips (degraded input | bicubic | {plan.tier.label} | HR):", *strips, sep="\n  ")
    gain = psnr_gain(report)
    what = f"{plan.tier.label} x{args.scale} after {plan.total_iter} iterations"
    photos = "degraded held-out photos" if args.real else "held-out photos"
    if gain <= 0:
        print(
            f"plksr demo: {what} does NOT beat bicubic on the {photos} ({gain:+.2f} dB PSNR): the run was "
            f"too short to learn more than interpolation; try a larger --minutes",
            file=sys.stderr,
        )
        return 1
    print(f"{what} beats bicubic on the {photos} by {gain:+.2f} dB PSNR.")
    return 0
