"""`plksr test -opt X.yml`: BasicSR testing plus results/<name>/metrics.json and a table."""

from __future__ import annotations

import argparse
import os.path as osp

from .train import add_basicsr_arguments


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_basicsr_arguments(sub.add_parser("test", help="test from a BasicSR option file; writes metrics.json"))


def run(args: argparse.Namespace) -> int:
    from .. import test

    report = test.run(args.opt, overrides=args.force_yml, launcher=args.launcher, debug=args.debug)
    print(test.format_table(report))
    print(f"Metrics: {osp.join('results', report['name'], 'metrics.json')}")
    return 0
