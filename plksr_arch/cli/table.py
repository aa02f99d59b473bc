"""`plksr table RESULTS_DIR...`: one paper-style table (rows = methods, columns = datasets) of several runs."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..evaluation.report import FORMATS

    parser = sub.add_parser("table", help="merge results/<name> folders of `plksr test` into one PSNR/SSIM table")
    parser.add_argument("results", nargs="+", help="results folders (or metrics.json files)")
    parser.add_argument("--format", choices=FORMATS, default="md", help="Markdown (default), CSV or LaTeX")
    parser.add_argument("--metrics", default="psnr,ssim", help="metrics per cell, joined by '/' (default psnr,ssim)")
    parser.add_argument("-o", "--output", help="write the table to this file instead of printing it")


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..evaluation.report import RENDER, load_report, merge_rows

    try:
        reports = [load_report(path) for path in args.results]
    except ValueError as err:
        raise UserError(str(err)) from None
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    text = RENDER[args.format](*merge_rows(reports, metrics)).rstrip("\n") + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"Table written to {args.output}")
    else:
        print(text, end="")
    return 0
