"""`plksr table` and `plksr plot` from the command line."""

from __future__ import annotations

import json
from pathlib import Path


def _report(name: str, scale: int, psnr: float, ref: dict | None = None) -> dict:
    entry = {"psnr": psnr, "ssim": 0.91234, "n_images": 5, "bicubic": {"psnr": 28.4, "ssim": 0.81}}
    if ref:
        entry["reference"] = ref
    return {
        "name": name,
        "scale": scale,
        "variant": "PLKSR-tiny",
        "reference": {"key": "R", "source": "s"} if ref else None,
        "datasets": {"Set5": entry, "Set14": {**entry, "psnr": psnr - 3}},
    }


LOG = """\
2026-11-28 10:00:00,000 INFO: Start training from epoch: 0, iter: 0
2026-11-28 10:00:01,000 INFO: [tiny..][epoch:  0, iter:      10, lr:(1.000e-03,)] [eta: 0:01:00] l_pix: 5.0000e-02
2026-11-28 10:00:02,000 INFO: [tiny..][epoch:  0, iter:      20, lr:(1.000e-03,)] [eta: 0:01:00] l_pix: 4.0000e-02
2026-11-28 10:00:03,000 INFO: Validation Set5 (iter 20)
\t # psnr: 25.1000\tBest: 25.1000 @ 20 iter
\t # ssim: 0.7000\tBest: 0.7000 @ 20 iter

2026-11-28 10:00:04,000 INFO: [tiny..][epoch:  1, iter:   1,030, lr:(1.000e-03,)] [eta: 0:01:00] l_pix: 3.0000e-02
2026-11-28 10:00:05,000 INFO: Validation Set5
\t # psnr: 26.2000\tBest: 26.2000 @ 1030 iter
"""


def test_plksr_table_command(tmp_path: Path, capsys) -> None:
    from plksr_arch.cli import main

    for name, scale in (("a", 2), ("b", 4)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(_report(name, scale, 30.0)))
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

    (tmp_path / "train_x_1.log").write_text(LOG)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["plot", str(tmp_path)]) == 2
    assert "plksr plot: error: matplotlib is not installed: pip install 'plksr-arch[plot]'" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "nowhere")]) == 2  # no logs: one line, exit 2
