"""The fault-injection suite: every case runs the real `plksr` command on one injected fault (docs/faults.md).

Each case asserts the exit status (2: a usage or input error; 1: `plksr infer` finished the other images), the one
error line naming the file, key or image at fault, that no traceback is printed, and that nothing that was on disk
before the run was lost or changed (`Snapshot`).
"""
