"""`plksr infer WEIGHTS INPUT... -o OUTDIR`: upscale image files, folders or globs with `Upscaler`."""

from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import sys
import time

from ..errors import USER_ERROR, UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..runtime import PRECISIONS

    parser = sub.add_parser("infer", help="upscale images (files, folders, globs) with PLKSR weights")
    parser.add_argument("weights", help="PLKSR weights: BasicSR .pth (params/params_ema), raw state dict, safetensors")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", required=True, help="output folder (same file names)")
    parser.add_argument("--tile", default=None, help="LR tile size in pixels, or 'auto' (default: whole images)")
    parser.add_argument("--tile-overlap", type=int, default=16, help="LR pixels shared by neighbouring tiles")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="default: fastest safe for device")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")


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


def output_path(path: str, outdir: str, sixteen_bit: bool) -> str:
    """Same name in `outdir`; 16-bit images go to PNG when their format cannot hold 16 bits (JPEG, BMP, WebP)."""
    stem, ext = osp.splitext(osp.basename(path))
    if sixteen_bit and ext.lower() not in (".png", ".tif", ".tiff"):
        ext = ".png"
    return osp.join(outdir, stem + ext)


def run(args: argparse.Namespace) -> int:
    import cv2
    from tqdm import tqdm

    from ..inference import Upscaler

    tile = args.tile if args.tile in (None, "auto") else _int_arg("--tile", args.tile)
    upscaler = Upscaler(args.weights, args.device, args.precision, tile, args.tile_overlap)
    files, problems = collect_inputs(args.inputs)
    os.makedirs(args.output, exist_ok=True)
    written: dict[str, str] = {}
    start = time.perf_counter()
    for path in tqdm(files, unit="img", desc="infer"):
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            problems.append(f"{path}: cannot read this image")
            continue
        out_path = output_path(path, args.output, img.dtype == "uint16")
        if out_path in written:
            problems.append(f"{path}: same output name as {written[out_path]} ({out_path}); skipped")
            continue
        try:
            rgb = _swap_rb(img)
            out = _swap_rb(upscaler(rgb))
        except UserError as err:
            problems.append(f"{path}: {err}")
            continue
        if not cv2.imwrite(out_path, out):
            problems.append(f"{out_path}: cannot write this image")
            continue
        written[out_path] = path
    seconds = time.perf_counter() - start
    for problem in problems:
        print(f"plksr infer: error: {problem}", file=sys.stderr)
    rate = len(written) / seconds if seconds else 0.0
    fallback = f", {upscaler.fallbacks} tile(s) redone in fp32" if upscaler.fallbacks else ""
    print(
        f"{len(written)} of {len(files)} image(s) written to {args.output} in {seconds:.1f} s ({rate:.2f} img/s; "
        f"{upscaler.device.type}, {upscaler.precision}{fallback})"
    )
    return USER_ERROR if problems else 0


def _int_arg(flag: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{flag} {value!r}: expected an int or 'auto'") from None


def _swap_rb(img):
    """BGR(A) <-> RGB(A) (OpenCV reads and writes BGR; the network is RGB); grey passes through."""
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return img[..., [2, 1, 0, *range(3, img.shape[2])]]
    return img
