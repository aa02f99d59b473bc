"""Faults of the disk and while training runs: a checkpoint write that fails (the file-size limit of a full disk),
outputs that cannot be written, SIGINT, SIGTERM and SIGKILL at several points, and a run that diverges. No saved
work is lost and `--auto_resume` continues."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from ..conftest import PLKSR, train_options, wait_for_file, write_yaml
from .harness import Snapshot, fault, run, tiny_weights

pytestmark = pytest.mark.slow


def _resumes(path: Path, cwd: Path, saved: int) -> None:
    """`--auto_resume` continues from iteration `saved` and trains four more."""
    total = saved + 4
    out = run("train", "-opt", str(path), "--auto_resume", "--force_yml", f"train:total_iter={total}", cwd=cwd)
    assert out.status == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr  # BasicSR's logger writes to stderr
    assert re.search(rf"Resuming training from epoch: \d+, iter: {saved}\.", log)
    assert re.search(rf"iter:\s+{total}, lr:", log) and not re.search(rf"iter:\s+{saved}, lr:", log)


def test_failing_checkpoint_write_keeps_the_previous_checkpoint(tmp_path: Path, data) -> None:
    """A run saved at iteration 2 is resumed under a 50 kB file-size limit, so its save at iteration 4 fails
    mid-file (EFBIG, as ENOSPC on a full disk); iteration 2's files stay loadable and `--auto_resume` works."""
    opt = train_options(data["train"])
    opt["train"]["total_iter"] = 2
    path = write_yaml(tmp_path / "train.yml", opt)
    assert run("train", "-opt", str(path), cwd=tmp_path).status == 0
    exp = tmp_path / "experiments" / "tiny"
    fault(
        "train",
        "-opt",
        str(path),
        "--auto_resume",
        "--force_yml",
        "train:total_iter=4",
        cwd=tmp_path,
        file_limit=50_000,
        names=["cannot save: [Errno 27] File too large: ", "the checkpoints saved before are intact"],
        kept=[exp / "models", exp / "training_states"],
    )
    assert sorted(p.name for p in (exp / "models").iterdir()) == ["net_g_2.pth", "net_g_latest.pth"]
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["2.state"]
    torch.load(exp / "models" / "net_g_2.pth", weights_only=True)
    _resumes(path, tmp_path, 2)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_output_that_cannot_be_written(suffix: str, tmp_path: Path) -> None:
    """`plksr convert` into a "folder" that is a file: the path and the reason, the input untouched."""
    weights = tiny_weights(tmp_path / "w.pth")
    (tmp_path / "afile").write_text("")
    out = f"afile/w{suffix}"
    reason = "Not a directory" if suffix == ".pth" else "cannot write (Error while serializing"
    fault("convert", str(weights), out, cwd=tmp_path, names=[f"{out}: {reason}"], kept=[weights])


def test_infer_output_folder_that_is_a_file(tmp_path: Path, data) -> None:
    weights = tiny_weights(tmp_path / "w.pth")
    (tmp_path / "out.png").write_bytes(b"an earlier result")
    fault(
        "infer",
        str(weights),
        str(data["val"][1]),
        "-o",
        "out.png",
        cwd=tmp_path,
        names=["-o out.png: exists and is not a folder"],
        kept=[tmp_path / "out.png"],
    )


def _start(path: Path, cwd: Path) -> subprocess.Popen:
    """`plksr train` as a terminal starts it, with SIGINT at its default: the tests may run as a background job of a
    non-interactive shell (as CI may start them), which ignores SIGINT for its children, and Python installs no
    KeyboardInterrupt handler where SIGINT is ignored."""
    return subprocess.Popen(
        [str(PLKSR), "train", "-opt", str(path)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_signal_during_training_loses_no_saved_work_and_resumes(tmp_path: Path, data, how: str) -> None:
    """SIGINT/SIGTERM finish the iteration, save there and exit 128 + signal; SIGKILL loses what came after the last
    checkpoint, which stays intact. Either way `--auto_resume` continues from the newest state."""
    opt = train_options(data["train"])
    opt["train"]["total_iter"] = 10_000
    opt["logger"]["save_checkpoint_freq"] = 3
    path = write_yaml(tmp_path / "train.yml", opt)
    proc = _start(path, tmp_path)
    states = tmp_path / "experiments" / "tiny" / "training_states"
    wait_for_file(states / "3.state", proc)
    time.sleep(1.0)
    snapshot = Snapshot(states / "3.state", states.parent / "models" / "net_g_3.pth")
    proc.send_signal(getattr(signal, how))
    out = proc.communicate(timeout=120)[0]
    snapshot.check()
    saved = max(int(p.stem) for p in states.glob("*.state"))
    assert "Traceback" not in out
    if how == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
    else:  # a polite stop saves where it is, so no work is lost
        assert proc.returncode == 128 + getattr(signal, how), out[-3000:]
        assert f"plksr train: stopped by {how} at iter {saved}; models and training state saved" in out
        assert (states.parent / "models" / f"net_g_{saved}.pth").is_file()
    _resumes(path, tmp_path, saved)


def test_sigint_while_starting_exits_cleanly(tmp_path: Path, data) -> None:
    """Ctrl-C before the first iteration (here: while the libraries load) is one line and status 130."""
    path = write_yaml(tmp_path / "train.yml", train_options(data["train"]))
    proc = _start(path, tmp_path)
    time.sleep(1.5)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130 and "Traceback" not in out, out[-3000:]
    assert out.strip().splitlines()[-1] == "plksr train: interrupted"


def test_diverging_run_stops_after_nonfinite_steps_and_keeps_the_last_good_weights(tmp_path: Path, data) -> None:
    """An absurd learning rate: the first step makes the weights huge, the next losses are not finite and are
    skipped; after `train.nonfinite_limit` of them the run stops with one line and saves where it stands."""
    opt = train_options(data["train"], name="diverge")
    opt["train"].update(total_iter=50, nonfinite_limit=3)
    opt["train"]["optim_g"]["lr"] = 1e30
    path = write_yaml(tmp_path / "diverge.yml", opt)
    out = fault(
        "train",
        "-opt",
        str(path),
        cwd=tmp_path,
        names=["steps in a row had a non-finite loss or gradient (last: l_pix="],
    )
    assert "non-finite l_pix=" in out.stderr and "net_g step skipped" in out.stderr
    stopped = int(re.search(r"stopped at iter (\d+): 3 steps in a row", out.line).group(1))
    weights = torch.load(tmp_path / "experiments" / "diverge" / "models" / f"net_g_{stopped}.pth", weights_only=True)
    assert all(torch.isfinite(t).all() for t in weights["params"].values())  # no non-finite update was applied
    assert (tmp_path / "experiments" / "diverge" / "training_states" / f"{stopped}.state").is_file()
