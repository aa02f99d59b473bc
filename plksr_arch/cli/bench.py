"""`plksr bench`: the paper's efficiency protocol (HD output, warm-up, median latency, peak memory) for PLKSR and
its peers, with the GEMM rate, as a table, JSON and optionally a latency-vs-PSNR plot."""

from __future__ import annotations

import argparse
import json
import os.path as osp

DEFAULT_MODELS = "PLKSR,PLKSR-tiny,SwinIR-light,EDSR-baseline"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="latency/memory at HD output for PLKSR and peers, with the GEMM rate")
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated (default {DEFAULT_MODELS})")
    parser.add_argument("--scale", type=int, choices=[2, 3, 4], default=4, help="upscaling factor (default 4)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument("--warmup", type=int, help="warm-up runs (default: 10 on CUDA, 1 on CPU)")
    parser.add_argument("--runs", type=int, help="timed runs, median reported (default: 50 on CUDA, 5 on CPU)")
    parser.add_argument("--json", default="bench.json", help="where to write the JSON report (default bench.json)")
    parser.add_argument("--plot", help="PNG of latency vs Urban100 PSNR (needs --references and matplotlib)")
    parser.add_argument("--references", help="YAML of published PSNRs, keys like 'PLKSR_x4' (see plksr test)")


def run(args: argparse.Namespace) -> int:
    from ..benchmark import bench
    from ..errors import UserError
    from ..evaluation.efficiency import plot, table
    from ..evaluation.references import load_references
    from ..runtime import resolve_device

    if args.plot and not args.references:
        raise UserError("--plot needs --references (the PSNR axis comes from published values)")
    references = load_references(args.references) if args.references else {}
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 1)
    runs = args.runs if args.runs is not None else (50 if cuda else 5)
    if warmup < 0 or runs < 1:
        raise UserError(f"--warmup {warmup} / --runs {runs}: need warm-up >= 0 and runs >= 1")
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    report = bench(names, device, args.scale, warmup, runs)
    print(table(report))
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(f"JSON: {osp.abspath(args.json)}")
    if args.plot:
        missing = plot(report, references, args.plot)
        left_out = f" (no Urban100 value for: {', '.join(missing)})" if missing else ""
        print(f"Plot: {args.plot}{left_out}")
    return 0
