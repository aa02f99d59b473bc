"""`plksr infer WEIGHTS INPUT... -o OUT`: upscale images and videos (files, folders, globs) with `Upscaler`; videos
stream through `inference.video` in one pass, keeping their sound, timing and subtitles."""

from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import signal
import sys
from typing import Any

from plksr_arch.cli import arch_opt
from plksr_arch.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Consecutive same-size images per network pass on a GPU (`--batch` unset); on a CPU batching gains nothing, as
# the network is compute-bound there, so images go one at a time.
GPU_BATCH = 8
# Exit status when some inputs could not be upscaled (each named on its own line) and the others were written; a run
# that cannot start (weights, arguments, no input found) is a user error, status 2; Ctrl-C during a video keeps its
# partial and exits 130 (`errors.INTERRUPTED`), SIGTERM 143.
SOME_FAILED = 1

# What `plksr infer` loads; `cli.main` loads it first, holding Ctrl-C until it is loaded.
LIBRARIES = ("plksr_arch.inference.upscaler", "plksr_arch.inference.folders", "plksr_arch.inference.video")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from plksr_arch.runtime.device import LARGE_KERNEL_ROUTES, PRECISIONS

    parser = sub.add_parser(
        "infer", help="upscale images and videos (files, folders, globs) with PLKSR weights; videos keep their sound"
    )
    parser.add_argument("weights", help="PLKSR weights: BasicSR .pth (params/params_ema), raw state dict, safetensors")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, folders or glob patterns")
    parser.add_argument(
        "-o", "--output", required=True, help="output folder (same file names), or the output file of one video"
    )
    parser.add_argument("--tile", default=None, help="LR tile size in pixels, or 'auto' (default: whole images)")
    parser.add_argument("--tile-overlap", type=int, default=16, help="LR pixels shared by neighbouring tiles")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="default: fastest safe for device")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--batch",
        type=int,
        help=f"consecutive same-size images or video frames per pass (default: {GPU_BATCH} on a GPU, 1 on a CPU)",
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
    video = parser.add_argument_group("video (the [video] extra: PyAV)")
    video.add_argument(
        "--codec",
        help="h264, hevc, av1, vp9 or ffv1 (default: H.264; VP9 in .webm; with --lossless FFV1 in .mkv/.avi, "
        "x264 RGB or x265 elsewhere)",
    )
    video.add_argument("--crf", type=int, help="quality, lower is better (default: h264 18, hevc 20, av1 30, vp9 28)")
    video.add_argument("--preset", help="encoder speed preset (default: medium for h264/hevc, 8 for av1)")
    video.add_argument("--pix-fmt", help="FFmpeg pixel format (default: the source's depth and chroma, e.g. yuv420p)")
    video.add_argument("--lossless", action="store_true", help="store the upscaled RGB frames exactly")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue each video's <name>.partial.<ext> left by Ctrl-C, and keep outputs that already exist",
    )


def collect_inputs(inputs: list[str], probed: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(files, problems): folders give their images and videos (sorted, not recursive; other files are skipped),
    globs expand, named files are kept as they are. What probing a folder's files found goes into `probed` (path ->
    `_examine`'s answer), for `split_media` to reuse."""
    probed = {} if probed is None else probed
    files, problems = [], []
    for item in inputs:
        if osp.isdir(item):
            found = []
            for name in sorted(os.listdir(item)):
                path = osp.join(item, name)
                if not osp.isfile(path):
                    continue
                if not name.lower().endswith(IMAGE_EXTENSIONS):
                    probed[path] = _examine(path)
                    if probed[path] == (None, None):
                        continue  # neither image nor video
                found.append(path)
        elif osp.isfile(item):
            found = [item]
        else:
            found = sorted(p for p in glob.glob(item) if osp.isfile(p))
        if not found:
            problems.append(f"{item}: no image or video files found")
        files += [f for f in found if f not in files]
    return files, problems


def _examine(path: str) -> tuple[Any, str | None]:
    """(video source, problem) of a file not named as an image, from probing it: (source, None) for a video,
    (None, problem) for a video that cannot be read, (None, None) for anything else (and for any name but a video
    one when PyAV is missing: nothing to tell by). A video name without PyAV raises `PyAVMissing`."""
    from plksr_arch.inference.video import VIDEO_EXTENSIONS, PyAVMissing, probe, require_av

    named = path.lower().endswith(VIDEO_EXTENSIONS)
    if named:
        require_av()
    try:
        source = probe(path)
    except PyAVMissing:
        return None, None
    except UserError as err:
        return None, str(err)
    if source is None and named:
        return None, f"{path}: not a video PyAV can read"
    return source, None


def split_media(files: list[str], probed: dict[str, Any] | None = None) -> tuple[list[str], dict[str, Any], list[str]]:
    """(images, videos: path -> `VideoSource`, problems): a file is a video when PyAV finds a video stream in it
    (whatever its name); image names are not probed, and files `collect_inputs` probed are not probed again.
    Anything else is left to OpenCV as an image."""
    probed = probed or {}
    images, videos, problems = [], {}, []
    for path in files:
        if path.lower().endswith(IMAGE_EXTENSIONS):
            images.append(path)
            continue
        source, problem = probed[path] if path in probed else _examine(path)
        if source is not None:
            videos[path] = source
        elif problem:
            problems.append(problem)
        else:
            images.append(path)
    return images, videos, problems


def video_settings(args: argparse.Namespace) -> Any:
    from plksr_arch.inference.video_formats import VideoSettings

    return VideoSettings(args.codec, args.crf, args.preset, args.pix_fmt, args.lossless)


def run(args: argparse.Namespace) -> int:
    from plksr_arch.inference.upscaler import Upscaler
    from plksr_arch.inference.video import VideoInterrupted

    tile = args.tile if args.tile in (None, "auto") else _int_arg("--tile", args.tile)
    if args.batch is not None and args.batch < 1:
        raise UserError(f"--batch {args.batch}: must be >= 1")
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
    probed: dict[str, Any] = {}
    files, problems = collect_inputs(args.inputs, probed)
    if not files:
        raise UserError("; ".join(problems))
    images, videos, found_problems = split_media(files, probed)
    problems += found_problems
    targets = video_targets(args.output, images, videos)
    batch = args.batch or (GPU_BATCH if upscaler.device.type == "cuda" else 1)
    plans, problems = _plan_videos(upscaler, videos, targets, video_settings(args), args.resume, problems)
    if args.resume:
        images = _not_done(images, args.output)
    if not images and not plans and problems:
        raise UserError("; ".join(problems))
    status = 0
    if images:
        problems += _run_images(upscaler, images, args.output, batch)
    try:
        for src, plan in plans.items():
            problems += _run_video(upscaler, videos[src], targets[src], plan, batch, args.resume)
    except VideoInterrupted as err:
        how = "interrupted" if err.signum == signal.SIGINT else f"stopped by {signal.Signals(err.signum).name}"
        print(f"plksr infer: {how}: {err}", file=sys.stderr)
        status = 128 + err.signum  # 130 (errors.INTERRUPTED) for Ctrl-C, 143 for SIGTERM
    for problem in problems:
        print(f"plksr infer: error: {problem}", file=sys.stderr)
    return status or (SOME_FAILED if problems else 0)


def video_targets(output: str, images: list[str], videos: dict[str, Any]) -> dict[str, str]:
    """Each video's output file: `output` itself for one video alone when it names a file (it has an extension and
    is no folder), else the video's name in the folder `output`."""
    from plksr_arch.inference.video import VIDEO_EXTENSIONS, output_name

    one_file = len(videos) == 1 and not images and osp.splitext(output)[1] != "" and not osp.isdir(output)
    if one_file:
        return {src: output for src in videos}
    if output.lower().endswith(VIDEO_EXTENSIONS) and not osp.isdir(output):
        raise UserError(
            f"-o {output}: names a video file, which is for one video input ({len(videos)} video(s), "
            f"{len(images)} image(s) found); give a folder"
        )
    if osp.exists(output) and not osp.isdir(output):
        raise UserError(f"-o {output}: exists and is not a folder (a file output is for one video input)")
    return {src: osp.join(output, output_name(source)) for src, source in videos.items()}


def _plan_videos(
    upscaler: Any, videos: dict[str, Any], targets: dict[str, str], settings: Any, resume: bool, problems: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """Every video's output plan, made before any work: refusals become problems, notes are printed once."""
    from plksr_arch.inference.video import check_partial, plan_output

    plans, problems = {}, list(problems)
    for src, source in videos.items():
        dst = targets[src]
        if resume and osp.exists(dst) and not check_partial(dst, resume=True):
            print(f"plksr infer: {dst} exists: kept (--resume)")
            continue
        try:
            plan = plan_output(source, dst, settings, upscaler.scale)
            check_partial(dst, resume)
        except UserError as err:
            problems.append(str(err))
            continue
        for note in plan.notes:
            print(f"plksr infer: warning: {note}", file=sys.stderr)
        plans[src] = plan
    return plans, problems


def _not_done(images: list[str], outdir: str) -> list[str]:
    """--resume: the images whose output is not there yet."""
    from plksr_arch.inference.folders import output_path

    todo = [p for p in images if not any(osp.exists(output_path(p, outdir, deep)) for deep in (False, True))]
    if len(todo) < len(images):
        print(f"plksr infer: {len(images) - len(todo)} image(s) already in {outdir}: kept (--resume)")
    return todo


def _run_images(upscaler: Any, images: list[str], outdir: str, batch: int) -> list[str]:
    from tqdm import tqdm

    from plksr_arch.inference.folders import upscale_files

    with tqdm(total=len(images), unit="img", desc="infer") as bar:
        done = upscale_files(upscaler, images, outdir, batch, progress=bar.update)
    rate = len(done.written) / done.seconds if done.seconds else 0.0
    fallback = f", {upscaler.fallbacks} tile(s) redone in fp32" if upscaler.fallbacks else ""
    compiled = f", compiling {sum(upscaler.warmups.values()):.1f} s" if upscaler.compiled else ""
    print(
        f"{len(done.written)} of {len(images)} image(s) written to {outdir} in {done.seconds:.1f} s ({rate:.2f} "
        f"img/s, network {done.network_seconds:.1f} s; {upscaler.device.type}, {upscaler.precision}, batch {batch}"
        f"{compiled}{fallback})"
    )
    return done.problems


def _run_video(upscaler: Any, source: Any, dst: str, plan: Any, batch: int, resume: bool) -> list[str]:
    """One video; its problem (one line), if any. Ctrl-C raises `VideoInterrupted` (the partial is kept)."""
    from tqdm import tqdm

    from plksr_arch.inference.video import upscale_video

    with tqdm(total=source.frames or None, unit="frame", desc=osp.basename(source.path)) as bar:
        try:
            run = upscale_video(
                upscaler, source.path, dst, batch=batch, resume=resume, progress=bar.update, source=source, plan=plan
            )
        except UserError as err:
            return [str(err)]
    for note in run.notes[len(plan.notes) :]:
        print(f"plksr infer: warning: {note}", file=sys.stderr)
    rate = run.computed / run.seconds if run.seconds else 0.0
    resumed = f", {run.resumed} from the partial" if run.resumed else ""
    print(
        f"{dst}: {run.frames} frame(s){resumed} in {run.seconds:.1f} s ({rate:.2f} frames/s, network "
        f"{run.network_seconds:.1f} s; {upscaler.device.type}, {upscaler.precision}, batch {batch}; {run.encoding})"
    )
    return []


def _int_arg(flag: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{flag} {value!r}: expected an int or 'auto'") from None
