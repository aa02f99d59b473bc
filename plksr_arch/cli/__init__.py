"""The `plksr` command: one subcommand per job; each parses, calls the library and reports.

User errors end with one line on stderr and exit status 2: `errors.UserError` (bad arguments, option files, weights,
inputs) and system errors naming a file (no permission, disk full, a file where a folder should be). `plksr --debug
...`, or train/test's own `--debug`, prints their traceback first. Anything else is a bug and keeps its traceback.
Ctrl-C outside training (which saves and exits 128 + the signal) is one line and exit 130; while a command's libraries
load (`LIBRARIES` of its module), it waits until they are loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence

from plksr_arch.cli import bench, convert, demo, export, infer, plot, prepare, table, test, train
from plksr_arch.errors import INTERRUPTED, USER_ERROR, UserError

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
    parser.add_argument(
        "--debug", dest="traceback", action="store_true", help="print the traceback of user errors as well"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for _name, module in COMMANDS.items():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `plksr` console script. Parsing imports no torch, so `--help` and usage errors are instant."""
    args = build_parser().parse_args(argv)
    # Our INFO lines (the "plksr" logger) and every library's warnings; libraries' INFO chatter (torch's exit-time
    # cache statistics, exporters' rewrites) stays hidden. BasicSR's logger has its own handler.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s: %(message)s", stream=sys.stdout)
    logging.getLogger("plksr").setLevel(logging.INFO)
    command = COMMANDS[args.command]
    try:
        with _sigint_held():
            for library in getattr(command, "LIBRARIES", ()):
                importlib.import_module(library)
        return command.run(args)
    except (UserError, OSError) as err:
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError) and err.filename is None:
            raise  # a system error naming no file is not a mistake the user can see: a bug
        if args.traceback or getattr(args, "debug", False):
            traceback.print_exc()
        print(f"plksr {args.command}: error: {_message(err)}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print(f"plksr {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Ctrl-C within the block takes effect at its end. Raised inside a library's import, KeyboardInterrupt can be
    swallowed by a bare `except` (the run then goes on) or turned into another error (a RuntimeError from
    `__set_name__`, with a traceback). Left alone where SIGINT is ignored, or off the main thread."""
    held: list[int] = []
    try:
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    except ValueError:  # signal handlers can only be set from the main thread
        previous = None
    try:
        yield
    finally:
        if previous not in (None, signal.SIG_IGN):
            signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt


def _message(err: Exception) -> str:
    """A user error's one line: a system OSError (no permission, disk full, a file where a folder should be) as
    `<file>: <reason>`; ours (FileNotFoundError included) carry their message."""
    if isinstance(err, OSError) and err.errno is not None and err.filename is not None:
        return f"{err.filename}: {err.strerror}"
    return str(err)
