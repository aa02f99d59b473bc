"""The `plksr` command: one subcommand per job; each parses, calls the library and reports.

User errors (`errors.UserError`: bad arguments, option files, weights, inputs) end with one line on stderr and exit
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..errors import USER_ERROR, UserError
from . import bench, convert, demo, export, infer, plot, prepare, table, test, train

COMMANDS = {
    "train": train,
    "test": test,
    "demo": demo,
    "prepare": prepare,
    "table": table,
    "plot": plot,
    "infer": infer,
    "bench": bench,
    "convert": convert,
    "export": export,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plksr", description="PLKSR super-resolution on BasicSR.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for _name, module in COMMANDS.items():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `plksr` console script. Parsing imports no torch, so `--help` and usage errors are instant."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s", stream=sys.stdout)
    try:
        return COMMANDS[args.command].run(args)
    except (UserError, FileNotFoundError) as err:
        print(f"plksr {args.command}: error: {err}", file=sys.stderr)
        return USER_ERROR
