"""`plksr plot experiments/<name>`: training loss and validation PSNR/SSIM against the iteration, as a PNG."""

from __future__ import annotations

import argparse
import importlib.util
import os.path as osp


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("plot", help="draw a run's training curves (needs matplotlib: the [plot] extra)")
    parser.add_argument("run_dir", help="the run's experiments/<name> folder")
    parser.add_argument("-o", "--output", help="PNG path (default: <run_dir>/curves.png)")


def run(args: argparse.Namespace) -> int:
    from plksr_arch.errors import UserError
    from plksr_arch.evaluation.curves import parse_logs, plot_curves, training_logs

    logs = training_logs(args.run_dir)
    if importlib.util.find_spec("matplotlib") is None:
        raise UserError("matplotlib is not installed: pip install 'plksr-arch[plot]'")
    curves = parse_logs(logs)
    if not curves.losses and not curves.metrics:
        raise UserError(f"{args.run_dir}: the logs hold no training or validation lines yet")
    out = plot_curves(
        curves, args.output or osp.join(args.run_dir, "curves.png"), osp.basename(osp.normpath(args.run_dir))
    )
    n_val = sum(len(points) for points in curves.metrics.values())
    print(f"Curves ({len(curves.losses)} losses, {n_val} validation points from {len(logs)} log(s)) written to {out}")
    return 0
