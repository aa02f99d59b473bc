"""`plksr test -opt X.yml`: BasicSR testing plus results/<name>/metrics.{json,md,csv} and the table."""

from __future__ import annotations

import argparse
import os.path as osp

from plksr_arch.cli.train import add_basicsr_arguments

# What `plksr test` loads; `cli.main` loads it first, holding Ctrl-C until it is loaded.
LIBRARIES = ("plksr_arch.training.test_pipeline",)


def add_parser(sub: argparse._SubParsersAction) -> None:
    add_basicsr_arguments(
        sub.add_parser("test", help="test from a BasicSR option file; writes metrics.json/.md/.csv and strips")
    )


def run(args: argparse.Namespace) -> int:
    from plksr_arch.evaluation.report import caption, format_table
    from plksr_arch.training import test_pipeline as test

    report = test.run(args.opt, overrides=args.force_yml, launcher=args.launcher, debug=args.debug)
    print(caption(report))
    print(format_table(report))
    print(f"Metrics: {osp.join('results', report['name'], 'metrics')}.{{json,md,csv}}")
    return 0
