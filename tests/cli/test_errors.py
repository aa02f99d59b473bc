"""Every user error of every `plksr` subcommand: one line `plksr <command>: error: ...` on stderr, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from plksr_arch.cli import COMMANDS, main

# subcommand -> (arguments with one mistake, the whole error line after "plksr <command>: error: "); {tmp} is a
# fresh folder
CASES = {
    "train": (["-opt", "{tmp}/missing.yml"], "{tmp}/missing.yml: no such option file"),
    "test": (["-opt", "{tmp}/missing.yml"], "{tmp}/missing.yml: no such option file"),
    "demo": (["--minutes", "-1"], "--minutes -1.0: must be > 0"),
    "prepare": (
        ["{tmp}", "--out", "{tmp}/o", "--name", "X", "--size", "100"],
        "--size 100 and --step 240 must be multiples of every scale (got --scales 2 3 4)",
    ),
    "table": (["{tmp}/nowhere"], "{tmp}/nowhere: no metrics.json (run `plksr test` first)"),
    "plot": (["{tmp}/nowhere"], "{tmp}/nowhere: no train_*.log (expected an experiments/<name> folder)"),
    "infer": (["{tmp}/w.pth", "{tmp}", "-o", "{tmp}/out"], "{tmp}/w.pth: no such weights file"),
    "bench": (
        ["--models", "PLKSR-huge", "--json", "{tmp}/b.json"],
        "models: PLKSR-huge unknown (known: PLKSR, PLKSR-tiny, RealPLKSR, SwinIR-light, EDSR-baseline, EDSR, OmniSR, "
        "CRAFT, SRFormer-light, DITN-real, SAFMN)",
    ),
    "convert": (["{tmp}/w.pth", "{tmp}/o.safetensors"], "{tmp}/w.pth: no such weights file"),
    "export": (["{tmp}/w.pth", "-o", "{tmp}/m.onnx"], "{tmp}/w.pth: no such weights file"),
}


def test_every_subcommand_has_a_case() -> None:
    assert set(CASES) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(CASES))
def test_user_error_is_one_line_and_exit_2(command: str, tmp_path: Path, capsys) -> None:
    args, line = CASES[command]
    assert main([command, *(a.format(tmp=tmp_path) for a in args)]) == 2
    assert capsys.readouterr().err == f"plksr {command}: error: {line.format(tmp=tmp_path)}\n"


def test_infer_batch_must_be_positive(tmp_path: Path, capsys) -> None:
    assert main(["infer", str(tmp_path / "w.pth"), str(tmp_path), "-o", str(tmp_path / "out"), "--batch", "0"]) == 2
    assert capsys.readouterr().err.strip() == "plksr infer: error: --batch 0: must be >= 1"


def test_ctrl_c_while_libraries_load_takes_effect_once_they_are_loaded() -> None:
    import os
    import signal

    from plksr_arch.cli import _sigint_held

    before = signal.getsignal(signal.SIGINT)
    loaded = []
    with pytest.raises(KeyboardInterrupt), _sigint_held():
        os.kill(os.getpid(), signal.SIGINT)  # as if during an import: nothing is raised there
        loaded.append("the rest of the block ran")
    assert loaded == ["the rest of the block ran"] and signal.getsignal(signal.SIGINT) is before
    with _sigint_held():  # no Ctrl-C: nothing happens
        pass
