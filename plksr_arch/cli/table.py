"""`plksr table [RESULTS_DIR...] [--paper [METHODS]]`: one paper-style table (rows = methods, columns = datasets) of
several runs, optionally with the rows the PLKSR paper reports for the methods it compares with."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from plksr_arch.evaluation.report import FORMATS

    parser = sub.add_parser("table", help="merge results/<name> folders of `plksr test` into one PSNR/SSIM table")
    parser.add_argument("results", nargs="*", help="results folders (or metrics.json files); none with --paper")
    parser.add_argument(
        "--paper",
        nargs="?",
        const="",
        metavar="METHODS",
        help="add the paper's rows: alone, the methods compared with the runs' variants (their paper tables); "
        "or a comma-separated list, e.g. SwinIR-light,OmniSR (PLKSR and PLKSR-tiny included)",
    )
    parser.add_argument("--format", choices=FORMATS, default="md", help="Markdown (default), CSV or LaTeX")
    parser.add_argument("--metrics", default="psnr,ssim", help="metrics per cell, joined by '/' (default psnr,ssim)")
    parser.add_argument("-o", "--output", help="write the table to this file instead of printing it")


def run(args: argparse.Namespace) -> int:
    from plksr_arch.errors import UserError
    from plksr_arch.evaluation import paper
    from plksr_arch.evaluation.report import RENDER, load_report, merge_rows

    if not args.results and args.paper is None:
        raise UserError("give results folders, --paper, or both")
    try:
        reports = [load_report(path) for path in args.results]
    except ValueError as err:
        raise UserError(str(err)) from None
    wanted = [m.strip() for m in args.paper.split(",") if m.strip()] if args.paper else None
    if wanted is None and args.paper is not None and not reports:
        wanted = [*dict.fromkeys(r.method for r in paper.table_of("PLKSR_DIV2K_x4"))]  # the paper's main table

    def paper_rows(scale: int, reference_keys: list[str]) -> list[tuple[str, dict]]:
        rows = paper.compared_rows(reference_keys, scale, wanted)
        return [(row.label, paper.results()[row.key]) for row in rows]

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    scales = sorted({r.scale for r in paper.rows()}) if args.paper is not None and not reports else []
    header, rows = merge_rows(reports, metrics, paper_rows if args.paper is not None else None, scales)
    text = RENDER[args.format](header, rows).rstrip("\n") + "\n"
    if args.paper is not None and args.format == "md":
        text += f"\nPaper rows: {paper.citation()}\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"Table written to {args.output}")
    else:
        print(text, end="")
    return 0
