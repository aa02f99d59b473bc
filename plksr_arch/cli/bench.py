"""`plksr bench`: the paper's efficiency protocol (HD output, warm-up, median latency, peak memory) for PLKSR and
its peers, with the machine's measured limit (a large convolution's rate), as a table and JSON; `--paper` measures
the paper's compared methods and sets our ratios beside the paper's; `--plot` draws the paper's Fig. 1 beside the
same plot with this machine's latencies."""

from __future__ import annotations

import argparse
import json
import os.path as osp

DEFAULT_MODELS = "PLKSR,PLKSR-tiny,SwinIR-light,EDSR-baseline"
PAPER_MODELS = "PLKSR,PLKSR-tiny,EDSR,SwinIR-light,OmniSR,CRAFT,SRFormer-light,DITN-real,SAFMN"

# What `plksr bench` loads; `cli.main` loads it first, holding Ctrl-C until it is loaded.
LIBRARIES = ("plksr_arch.bench.protocol", "plksr_arch.training.step_bench", "plksr_arch.bench.video_bench")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="latency/memory at HD output for PLKSR and peers, with the machine's limit")
    parser.add_argument("--models", help=f"comma-separated (default {DEFAULT_MODELS}; with --paper {PAPER_MODELS})")
    parser.add_argument(
        "--paper",
        action="store_true",
        help="the paper's comparison: PLKSR and PLKSR-tiny against the compared methods buildable here (spandrel's "
        "need the [bench] extra), our latency/memory ratios beside the paper's",
    )
    parser.add_argument("--scale", type=int, choices=[2, 3, 4], default=4, help="upscaling factor (default 4)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--warmup", type=int, help="warm-up runs (default: 10 on CUDA, 1 on CPU; --train: 3 iterations)"
    )
    parser.add_argument(
        "--runs", type=int, help="timed runs, median reported (default: 50 on CUDA, 5 on CPU; --train: 20 iterations)"
    )
    parser.add_argument("--json", default="bench.json", help="where to write the JSON report (default bench.json)")
    parser.add_argument(
        "--backend",
        choices=["onnxruntime"],
        action="append",
        default=[],
        help="add a row per PLKSR model run by this backend (onnxruntime: its CPU provider, fp32; [export] extra)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="add a row per PLKSR model run through torch.compile (CUDA graphs on GPUs); its first call is reported",
    )
    parser.add_argument("--plot", help="PNG: Urban100 PSNR vs latency, the paper's and this machine's (matplotlib)")
    parser.add_argument(
        "--train",
        action="store_true",
        help="training instead: s/iter, images/s and peak memory of plksr train and of BasicSR's SRModel (fp32 NCHW) "
        "on -opt's data and network, alternately in fresh processes, and where a step goes",
    )
    parser.add_argument("-opt", "--opt", metavar="X.yml", help="--train: the training option file")
    parser.add_argument("--rounds", type=int, default=2, help="--train: runs of each trainer, alternating (default 2)")
    parser.add_argument(
        "--video",
        action="store_true",
        help="video instead: the network's frames/s on decoded frames against a whole video pass (decode, upscale, "
        "encode, sound copied) on a synthetic clip, and their ratio ([video] extra)",
    )
    parser.add_argument("--frames", type=int, default=60, help="--video: frames in the clip (default 60)")
    parser.add_argument("--size", default="320x180", help="--video: clip size WxH (default 320x180: HD output at x4)")
    parser.add_argument("--weights", help="--video: weights to run (default: PLKSR-tiny x4, official initialisation)")
    parser.add_argument("--batch", type=int, help="--video: frames per pass (default: 8 on a GPU, 1 on a CPU)")


def run(args: argparse.Namespace) -> int:
    import importlib.util

    from plksr_arch.bench.protocol import bench
    from plksr_arch.errors import UserError
    from plksr_arch.evaluation.efficiency import paper_comparison, paper_table, plot, table
    from plksr_arch.runtime.device import resolve_device

    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise UserError("--plot needs matplotlib: pip install 'plksr-arch[plot]'")
    if args.train:
        return run_train(args)
    if args.video:
        return run_video(args)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 1)
    runs = args.runs if args.runs is not None else (50 if cuda else 5)
    if warmup < 0 or runs < 1:
        raise UserError(f"--warmup {warmup} / --runs {runs}: need warm-up >= 0 and runs >= 1")
    models = args.models or (PAPER_MODELS if args.paper else DEFAULT_MODELS)
    names = [n.strip() for n in models.split(",") if n.strip()]
    report = bench(names, device, args.scale, warmup, runs, backends=tuple(args.backend), compile=args.compile)
    report["paper"] = paper_comparison(report)
    print(table(report))
    if args.paper:
        print()
        print(paper_table(report))
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(f"JSON: {osp.abspath(args.json)}")
    if args.plot:
        missing = plot(report, args.plot)
        left_out = f" (not in the paper's tables: {', '.join(missing)})" if missing else ""
        print(f"Plot: {args.plot}{left_out}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """`plksr bench --train -opt X.yml`: `training.step_bench`'s report, printed and written to --json."""
    from plksr_arch.errors import UserError
    from plksr_arch.training.step_bench import bench_training, table

    if not args.opt:
        raise UserError("--train needs -opt X.yml (the training option file to measure)")
    warmup = 3 if args.warmup is None else args.warmup
    runs = 20 if args.runs is None else args.runs
    if warmup < 1 or runs < 1 or args.rounds < 1:
        raise UserError(f"--warmup {warmup} / --runs {runs} / --rounds {args.rounds}: need each >= 1 with --train")
    report = bench_training(args.opt, warmup, runs, args.rounds, say=print)
    print(table(report))
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(f"JSON: {osp.abspath(args.json)}")
    return 0


def run_video(args: argparse.Namespace) -> int:
    """`plksr bench --video`: `bench.video_bench`'s report, printed and written to --json."""
    from plksr_arch.bench.video_bench import bench_video, table
    from plksr_arch.errors import UserError

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UserError(f"--size {args.size}: expected WxH, e.g. 320x180") from None
    if args.batch is not None and args.batch < 1:
        raise UserError(f"--batch {args.batch}: must be >= 1")
    report = bench_video(args.weights, args.frames, (width, height), args.device, args.batch)
    print(table(report))
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(f"JSON: {osp.abspath(args.json)}")
    return 0
