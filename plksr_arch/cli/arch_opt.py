"""`--arch-opt KEY=VALUE`: a constructor argument for weights that do not store theirs (see
`weights.read.load_model`)."""

from __future__ import annotations

import argparse
from typing import Any

from plksr_arch.errors import UserError


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--arch-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="constructor argument the weights cannot show (e.g. norm_groups=8, with_idt=true), for files that do not "
        "store theirs; repeatable",
    )


def parse(entries: list[str]) -> dict[str, Any]:
    """`{KEY: VALUE}` with VALUE read as in option files (8, true, 2e-1, [1, 2]); a UserError naming an entry without
    `=`."""
    import yaml

    from plksr_arch.training.options import yaml_value

    options = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--arch-opt {entry!r}: expected KEY=VALUE, e.g. norm_groups=8")
        try:
            options[key.strip()] = yaml_value(value)
        except yaml.YAMLError:
            raise UserError(f"--arch-opt {entry!r}: {value!r} is not a YAML value") from None
    return options
