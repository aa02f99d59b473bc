"""`plksr table` and `plksr plot` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from ..conftest import TRAIN_LOG, metrics_report


def test_plksr_table_command(tmp_path: Path, capsys) -> None:
    from plksr_arch.cli import main

    for name, scale in (("a", 2), ("b", 4)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(metrics_report(name, scale, 30.0)))
    assert main(["table", str(tmp_path / "a"), str(tmp_path / "b" / "metrics.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| scale | method | Set5 | Set14 |" and "| x4 | b | 30.00/0.9123 | 27.00/0.9123 |" in out
    assert main(["table", str(tmp_path / "a"), "--format", "latex", "-o", str(tmp_path / "t.tex")]) == 0
    assert (tmp_path / "t.tex").read_text().startswith(r"\begin{tabular}")
    assert main(["table", str(tmp_path / "missing")]) == 2
    assert "missing: no metrics.json" in capsys.readouterr().err


def test_plot_without_matplotlib_says_how_to_install(tmp_path: Path, monkeypatch, capsys) -> None:
    import importlib.util

    from plksr_arch.cli import main

    (tmp_path / "train_x_1.log").write_text(TRAIN_LOG)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["plot", str(tmp_path)]) == 2
    assert "plksr plot: error: matplotlib is not installed: pip install 'plksr-arch[plot]'" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "nowhere")]) == 2  # no logs: one line, exit 2
