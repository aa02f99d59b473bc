"""`plksr prepare HR_DIR --out datasets/DIV2K --name DIV2K`: bicubic LR, sub-images and LMDBs for training."""

from __future__ import annotations

import argparse
import os


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("prepare", help="make LR/sub-image LMDBs from a folder of HR images (DIV2K, DF2K)")
    parser.add_argument("hr_folder", help="folder of HR training images, e.g. DIV2K_train_HR")
    parser.add_argument("--out", required=True, help="output folder, e.g. datasets/DIV2K")
    parser.add_argument("--name", required=True, help="dataset name used in file names, e.g. DIV2K")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4], help="LR scales to make")
    parser.add_argument("--size", type=int, default=480, help="HR sub-image size (BasicSR: 480)")
    parser.add_argument("--step", type=int, default=240, help="HR sub-image stride (BasicSR: 240)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes")
    parser.add_argument("--no-lmdb", dest="lmdb", action="store_false", help="keep PNG folders only (disk backend)")


def run(args: argparse.Namespace) -> int:
    from ..data.prepare import prepare_dataset, tiling_problem
    from ..errors import UserError

    problem = tiling_problem(args.scales, args.size, args.step)
    if problem:
        raise UserError(problem)
    results = prepare_dataset(
        args.hr_folder, args.out, args.name, args.scales, args.size, args.step, args.workers, args.lmdb, progress=True
    )
    for key, path in results.items():
        print(f"{key}: {path}")
    return 0
