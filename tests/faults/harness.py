"""Running one fault: the `plksr` subprocess, its checks, and the snapshot of what was on disk before."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..conftest import PLKSR, TINY_NET, metrics, paired_dataset

MARKER = "PAYLOAD_RAN"  # the file a pickle payload would create: its absence shows nothing in the file ran


class Snapshot:
    """The content hash of every file under some folders; `check()` fails naming any file lost or changed since."""

    def __init__(self, *roots: Path) -> None:
        self.roots = roots
        self.files = {path: _digest(path) for path in _files(roots)}

    def check(self) -> None:
        lost = [str(p) for p in self.files if not p.is_file()]
        changed = [str(p) for p, digest in self.files.items() if p.is_file() and _digest(p) != digest]
        assert not lost and not changed, f"lost: {lost}; changed: {changed}"


def _files(roots: Iterable[Path]) -> list[Path]:
    return sorted(p for root in roots for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Outcome:
    """A finished run: exit status, output, and the error line(s) `plksr <command>: error: ...`."""

    status: int
    stdout: str
    stderr: str
    errors: list[str]

    @property
    def line(self) -> str:
        """The one error line of a fault."""
        return self.errors[0]


def run(*args: str, cwd: Path, file_limit: int | None = None, timeout: float = 300) -> Outcome:
    """`plksr ARGS` in `cwd`; `file_limit` caps the size of every file the process writes (RLIMIT_FSIZE), so a
    write past it fails as on a full disk."""

    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, resource.RLIM_INFINITY))

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [str(PLKSR), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, preexec_fn=limit
    )
    command = next(a for a in args if not a.startswith("-"))
    errors = [line for line in proc.stderr.splitlines() if line.startswith(f"plksr {command}: error: ")]
    return Outcome(proc.returncode, proc.stdout, proc.stderr, errors)


def fault(
    *args: str,
    cwd: Path,
    names: Iterable[str],
    status: int = 2,
    kept: Iterable[Path] = (),
    file_limit: int | None = None,
) -> Outcome:
    """Run `plksr ARGS` on an injected fault and check it (module docstring): exit `status`, exactly one error line
    naming every string of `names`, no traceback, and every file under `kept` unchanged."""
    snapshot = Snapshot(*kept)
    out = run(*args, cwd=cwd, file_limit=file_limit)
    log = f"exit {out.status}\n--- stdout\n{out.stdout[-3000:]}\n--- stderr\n{out.stderr[-3000:]}"
    assert out.status == status, log
    assert "Traceback" not in out.stdout + out.stderr, log
    assert len(out.errors) == 1, log
    for name in names:
        assert str(name) in out.line, f"{name!r} not named in: {out.line}"
    snapshot.check()
    assert not (cwd / MARKER).exists(), "a pickle payload ran"
    print(out.line)  # shown by `pytest tests/faults -rP`: the messages docs/faults.md quotes
    return out


def tiny_weights(path: Path, scale: int = 2, architecture: str = "PLKSR") -> Path:
    """A tiny network's random weights in BasicSR's layout (`{"params": ...}`)."""
    from plksr_arch import PLKSR, RealPLKSR

    net_opt = {k: v for k, v in TINY_NET.items() if k != "type"}
    if architecture == "RealPLKSR":
        net = RealPLKSR(dim=16, n_blocks=2, kernel_size=7, upscaling_factor=scale)
    else:
        net = PLKSR(**net_opt, upscaling_factor=scale)
    torch.save({"params": net.state_dict()}, path)
    return path


def options_for_test(data: tuple[Path, Path], weights: Path, scale: int = 2) -> dict:
    """A `plksr test` option dict for the tiny network on a paired set."""
    return {
        "name": "tiny_test",
        "model_type": "PLKSRModel",
        "scale": scale,
        "num_gpu": 0,
        "datasets": {"test_1": paired_dataset("tiny_val", data)},
        "network_g": {**TINY_NET, "upscaling_factor": scale},
        "path": {"pretrain_network_g": str(weights), "strict_load_g": True},
        "val": {"save_img": False, "suffix": None, "metrics": metrics(scale)},
    }


class Payload:
    """Pickles as a call of `os.system` that creates MARKER in `folder`: what a malicious checkpoint carries."""

    def __init__(self, folder: Path) -> None:
        self.command = f"touch {folder / MARKER}"

    def __reduce__(self) -> tuple:
        return (os.system, (self.command,))


def payload_weights(path: Path, folder: Path) -> Path:
    """Real tiny weights with a payload beside them, as `torch.save` writes a tampered checkpoint."""
    state = torch.load(tiny_weights(path), weights_only=True)
    torch.save({**state, "meta": Payload(folder)}, path)
    return path
