"""`plksr demo`: the embedded default: train PLKSR-tiny on scikit-image's photos, test it against bicubic."""

from __future__ import annotations

import argparse
import os.path as osp
import time


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="train and test PLKSR-tiny on embedded photos (no data, no network)")
    parser.add_argument("--workdir", default="plksr_demo", help="where data, experiments and results go")
    parser.add_argument("--scale", type=int, choices=[2, 3, 4], default=4, help="upscaling factor")
    parser.add_argument("--minutes", type=float, default=7.0, help="training time budget in minutes")


def run(args: argparse.Namespace) -> int:
    from ..data.demo import run_demo
    from ..evaluation.report import format_table

    if args.minutes <= 0:
        raise SystemExit(f"plksr demo: error: --minutes {args.minutes}: must be > 0")
    start = time.time()
    report = run_demo(args.workdir, scale=args.scale, minutes=args.minutes)
    print(format_table(report))
    metrics = osp.join(args.workdir, "results", report["name"], "metrics.json")
    print(f"Metrics: {metrics}  (demo took {time.time() - start:.0f} s)")
    return 0
