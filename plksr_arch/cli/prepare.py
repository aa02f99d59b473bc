"""`plksr prepare HR_DIR --out datasets/DIV2K --name DIV2K`: bicubic LR, sub-images and LMDBs for training;
`--real`: GT sub-images + meta_info for real-world training; `--degraded-val`: a paired set degraded with a seed."""

from __future__ import annotations

import argparse
import os


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "prepare",
        help="make training data from a folder of HR images: bicubic LR LMDBs (default), GT + meta_info (--real) or "
        "a degraded paired set (--degraded-val)",
    )
    parser.add_argument("hr_folder", help="folder of HR images, e.g. DIV2K_train_HR")
    parser.add_argument("--out", required=True, help="output folder, e.g. datasets/DIV2K")
    parser.add_argument("--name", required=True, help="dataset name used in file names, e.g. DIV2K")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--real",
        action="store_true",
        help="GT sub-images (400 px every 200) and meta_info/meta_info_<name>_sub.txt for RealESRGANDataset",
    )
    mode.add_argument(
        "--degraded-val",
        action="store_true",
        help="<name>_degraded_X<s>/{GT,LQ}: centre crops (--size, default 400) degraded by Real-ESRGAN's x4plus "
        "recipe with --seed, for validating real-world training",
    )
    parser.add_argument("--multiscale", action="store_true", help="with --real: add Real-ESRGAN's multi-scale GT")
    parser.add_argument("--seed", type=int, default=0, help="with --degraded-val: the degradation's seed")
    parser.add_argument("--scales", type=int, nargs="+", default=None, help="LR scales to make (default 2 3 4)")
    parser.add_argument("--size", type=int, help="HR sub-image size (BasicSR: 480; --real: 400)")
    parser.add_argument("--step", type=int, help="HR sub-image stride (BasicSR: 240; --real: 200)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes")
    parser.add_argument("--no-lmdb", dest="lmdb", action="store_false", help="keep PNG folders only (disk backend)")


def run(args: argparse.Namespace) -> int:
    from plksr_arch.data.preparation import list_images, prepare_dataset, prepare_real, tiling_problem
    from plksr_arch.errors import UserError

    if args.multiscale and not args.real:
        raise UserError("--multiscale: only with --real")
    for flag in ("size", "step"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag} {value}: must be >= 1")
    try:
        if args.real:
            if args.scales is not None:
                raise UserError("--scales: --real writes GT only (the LQ is made on the fly in training)")
            results = prepare_real(
                args.hr_folder,
                args.out,
                args.name,
                args.size or 400,
                args.step or 200,
                args.multiscale,
                args.workers,
                progress=True,
            )
        elif args.degraded_val:
            results = _degraded_val(args, list_images(args.hr_folder))
        else:
            scales, size, step = args.scales or [2, 3, 4], args.size or 480, args.step or 240
            problem = tiling_problem(scales, size, step)
            if problem:
                raise UserError(problem)
            results = prepare_dataset(
                args.hr_folder, args.out, args.name, scales, size, step, args.workers, args.lmdb, progress=True
            )
    except FileNotFoundError as err:
        raise UserError(str(err)) from None
    for key, path in results.items():
        print(f"{key}: {path}")
    return 0


def _degraded_val(args: argparse.Namespace, paths: list[str]) -> dict[str, str]:
    import os.path as osp
    from functools import partial

    from plksr_arch.data.preparation import build_once, sources
    from plksr_arch.errors import UserError
    from plksr_arch.training.degrade import degraded_pairs

    results = {}
    for scale in args.scales or [4]:
        if scale not in (2, 4):
            raise UserError(f"--scales {scale}: the real-world degradation supports x2 and x4")
        folder = osp.join(args.out, f"{args.name}_degraded_X{scale}")
        size = args.size or 400
        stamp = {"made": "degraded pairs", "sources": sources(paths), "scale": scale, "size": size, "seed": args.seed}
        build_once(folder, stamp, partial(degraded_pairs, paths, scale=scale, size=size, seed=args.seed))
        results.update({f"x{scale} {kind}": osp.join(folder, kind.upper()) for kind in ("gt", "lq")})
    return results
