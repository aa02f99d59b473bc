"""`plksr infer WEIGHTS INPUT... -o OUTDIR`: upscale image files, folders or globs with `Upscaler`."""

from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import sys

from plksr_arch.cli import arch_opt
from plksr_arch.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Consecutive same-size images per network pass on a GPU (`--batch` unset); on a CPU batching gains nothing, as
# the network is compute-bound there, so images go one at a time.
GPU_BATCH = 8
# Exit status when some inputs could not be upscaled (each named on its own line) and the others were written; a run
# that cannot start (weights, arguments, no input found) is a user error, status 2.
SOME_FAILED = 1

# What `plksr infer` loads; `cli.main` loads it first, holding Ctrl-C until it is loaded.
LIBRARIES = ("plksr_arch.inference.upscaler", "plksr_arch.inference.folders")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from plksr_arch.runtime.device import LARGE_KERNEL_ROUTES, PRECISIONS

    parser = sub.add_parser("infer", help="upscale images (files, folders, globs) with PLKSR weights")
    parser.add_argument("weights", help="PLKSR weights: BasicSR .pth (params/params_ema), raw state dict, safetensors")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", required=True, help="output folder (same file names)")
    parser.add_argument("--tile", default=None, help="LR tile size in pixels, or 'auto' (default: whole images)")
    parser.add_argument("--tile-overlap", type=int, default=16, help="LR pixels shared by neighbouring tiles")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="default: fastest safe for device")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--batch", type=int, help=f"consecutive same-size images per pass (default: {GPU_BATCH} on a GPU, 1 on a CPU)"
    )
    parser.add_argument(
        "--large-kernel",
        choices=LARGE_KERNEL_ROUTES,
        default="auto",
        help="PLKC route: auto (default: the faster here, measured), direct, spectral (FFT)",
    )
    arch_opt.add_argument(parser)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network (CUDA graphs on GPUs), once per input size: for many same-size images",
    )


def collect_inputs(inputs: list[str]) -> tuple[list[str], list[str]]:
    """(image files, problems): folders give their images (sorted, not recursive), globs expand."""
    files, problems = [], []
    for item in inputs:
        if osp.isdir(item):
            found = sorted(osp.join(item, n) for n in os.listdir(item) if n.lower().endswith(IMAGE_EXTENSIONS))
        elif osp.isfile(item):
            found = [item]
        else:
            found = sorted(p for p in glob.glob(item) if osp.isfile(p))
        if not found:
            problems.append(f"{item}: no image files found")
        files += [f for f in found if f not in files]
    return files, problems


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from plksr_arch.inference.folders import upscale_files
    from plksr_arch.inference.upscaler import Upscaler

    tile = args.tile if args.tile in (None, "auto") else _int_arg("--tile", args.tile)
    if args.batch is not None and args.batch < 1:
        raise UserError(f"--batch {args.batch}: must be >= 1")
    if osp.exists(args.output) and not osp.isdir(args.output):
        raise UserError(f"-o {args.output}: exists and is not a folder")
    upscaler = Upscaler(
        args.weights,
        args.device,
        args.precision,
        tile,
        args.tile_overlap,
        args.large_kernel,
        args.compile,
        arch_options=arch_opt.parse(args.arch_opt),
    )
    batch = args.batch or (GPU_BATCH if upscaler.device.type == "cuda" else 1)
    files, problems = collect_inputs(args.inputs)
    if not files:
        raise UserError("; ".join(problems))
    with tqdm(total=len(files), unit="img", desc="infer") as bar:
        done = upscale_files(upscaler, files, args.output, batch, progress=bar.update)
    for problem in problems + done.problems:
        print(f"plksr infer: error: {problem}", file=sys.stderr)
    rate = len(done.written) / done.seconds if done.seconds else 0.0
    fallback = f", {upscaler.fallbacks} tile(s) redone in fp32" if upscaler.fallbacks else ""
    compiled = f", compiling {sum(upscaler.warmups.values()):.1f} s" if upscaler.compiled else ""
    print(
        f"{len(done.written)} of {len(files)} image(s) written to {args.output} in {done.seconds:.1f} s ({rate:.2f} "
        f"img/s, network {done.network_seconds:.1f} s; {upscaler.device.type}, {upscaler.precision}, batch {batch}"
        f"{compiled}{fallback})"
    )
    return SOME_FAILED if problems or done.problems else 0


def _int_arg(flag: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{flag} {value!r}: expected an int or 'auto'") from None
