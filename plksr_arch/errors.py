"""The one contract for mistakes a user can fix: `UserError`.

Bad arguments, option files, weights, reference files and input images raise a `UserError` (or a subclass:
`OptionsError`, `CheckpointError`, `ReferenceFileError`) whose message names the file, key or value at fault. The
`plksr` command prints it as one line, `plksr <command>: error: <message>`, and exits with `USER_ERROR` (2); any other
exception is a bug and keeps its traceback. Importing this module imports nothing else.
"""

from __future__ import annotations

USER_ERROR = 2


class UserError(ValueError):
    """A mistake the user can fix; the message names what is at fault and, where it helps, what to do."""
