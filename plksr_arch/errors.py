"""The one contract for mistakes a user can fix: `UserError`.

Bad arguments, option files, weights, reference files and input images raise a `UserError` (or a subclass:
`OptionsError`, `CheckpointError`, `ReferenceFileError`) whose message names the file, key or value at fault. The
`plksr` command prints it as one line, `plksr <command>: error: <message>`, and exits with `USER_ERROR` (2) (with
`plksr --debug`, after its traceback); any other exception is a bug and keeps its traceback. Importing this module
imports nothing else.
"""

from __future__ import annotations

USER_ERROR = 2
INTERRUPTED = 130  # the shell's status for a process ended by SIGINT (Ctrl-C)


class UserError(ValueError):
    """A mistake the user can fix; the message names what is at fault and, where it helps, what to do.

    One raised in a DataLoader worker reaches the main process rebuilt from the worker's traceback text ("Caught
    ImageError in DataLoader worker process 0.", "Original Traceback ...", ..., "module.ImageError: <message>", one
    per line): the message keeps the original one, from the last line.
    """

    def __init__(self, message: str = "") -> None:
        if message.startswith("Caught ") and "\nOriginal Traceback" in message:
            message = message.rstrip().rsplit("\n", 1)[-1].split(": ", 1)[-1]
        super().__init__(message)
