"""`plksr train -opt X.yml`: BasicSR training with experiments under the working directory."""

from __future__ import annotations

import argparse
import sys

# What `plksr train` loads; `cli.main` loads it first, holding Ctrl-C until it is loaded.
LIBRARIES = ("plksr_arch.training.train_pipeline",)


def add_basicsr_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments BasicSR's train/test scripts take."""
    parser.add_argument("-opt", "--opt", required=True, metavar="X.yml", help="option file (BasicSR YAML)")
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch", "slurm"],
        default="none",
        help="distributed launcher (pytorch: run under torchrun; NCCL on CUDA, Gloo on CPU)",
    )
    parser.add_argument("--debug", action="store_true", help="BasicSR debug run: name prefixed debug_, frequent logs")
    parser.add_argument(
        "--force_yml",
        nargs="+",
        default=[],
        metavar="KEY:SUB=VALUE",
        help="override option values, e.g. train:total_iter=1000 (values are YAML)",
    )
    parser.add_argument("--local_rank", type=int, default=0, help=argparse.SUPPRESS)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train from a BasicSR option file")
    add_basicsr_arguments(parser)
    parser.add_argument(
        "--auto_resume", action="store_true", help="resume from the latest state in experiments/<name>/training_states"
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="the official trainer's arithmetic bit for bit (fp32 NCHW direct convolutions, torch's default Adam, "
        "BasicSR's data loader; fp16 autocast on CUDA): the option key exact: true",
    )


def run(args: argparse.Namespace) -> int:
    from plksr_arch.training import train_pipeline as train

    try:
        weights = train.run(
            args.opt,
            overrides=[*args.force_yml, *(["exact=true"] if args.exact else [])],
            launcher=args.launcher,
            auto_resume=args.auto_resume,
            debug=args.debug,
        )
    except train.Interrupted as stop:
        print(f"plksr train: {stop}; resume with --auto_resume", file=sys.stderr)
        return 128 + stop.signum
    print(f"Latest weights: {weights}")
    return 0
