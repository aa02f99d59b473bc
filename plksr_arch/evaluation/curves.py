"""Training curves from a run's BasicSR log files: losses and validation metrics against the iteration.

Reads `experiments/<name>/train_<name>_<time>.log` (every one, oldest first, so resumed runs join up). Training
lines look like `[name..][epoch:  0, iter:     100, lr:(...)] [...] l_pix: 1.2e-02`; validation blocks are
`Validation <dataset> (iter N)` followed by `# <metric>: <value>` lines (BasicSR's own blocks, without the
iteration, are placed at the last logged training iteration).
"""

from __future__ import annotations

import glob
import os.path as osp
import re
from dataclasses import dataclass, field

_TRAIN = re.compile(r"\]\[epoch:\s*\d+, iter:\s*([\d,]+), lr:\(")
_LOSS = re.compile(r"\b(l_\w+): ([-+\d.eE]+)")
_VAL = re.compile(r"Validation (\S+?)(?: \(iter ([\d,]+)\))?\s*$")
_METRIC = re.compile(r"^\s*# (\w+): ([-+\d.eE]+)")


@dataclass
class Curves:
    """`losses[name] = [(iter, value)]`, `metrics[(dataset, metric)] = [(iter, value)]`."""

    losses: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    metrics: dict[tuple[str, str], list[tuple[int, float]]] = field(default_factory=dict)


def training_logs(run_dir: str) -> list[str]:
    """The run's training logs, oldest first; FileNotFoundError naming the folder when there is none."""
    logs = sorted(glob.glob(osp.join(run_dir, "train_*.log")))
    if not logs:
        raise FileNotFoundError(f"{run_dir}: no train_*.log (expected an experiments/<name> folder)")
    return logs


def parse_logs(paths: list[str]) -> Curves:
    """Losses and validation metrics from BasicSR log files; a later point for the same iteration wins."""
    losses: dict[str, dict[int, float]] = {}
    metrics: dict[tuple[str, str], dict[int, float]] = {}
    for path in paths:
        it, dataset = 0, None
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if m := _TRAIN.search(line):
                    it, dataset = int(m.group(1).replace(",", "")), None
                    for name, value in _LOSS.findall(line[m.end() :]):
                        losses.setdefault(name, {})[it] = float(value)
                elif m := _VAL.search(line):
                    dataset = m.group(1)
                    val_iter = int(m.group(2).replace(",", "")) if m.group(2) else it
                elif dataset and (m := _METRIC.match(line)):
                    metrics.setdefault((dataset, m.group(1)), {})[val_iter] = float(m.group(2))
    return Curves(
        losses={k: sorted(v.items()) for k, v in losses.items()},
        metrics={k: sorted(v.items()) for k, v in metrics.items()},
    )


def plot_curves(curves: Curves, out_path: str, title: str = "") -> str:
    """Draw losses (log scale) and one panel per validation metric to `out_path` (PNG); needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({metric for _, metric in curves.metrics})
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(5 * (1 + len(names)), 4), squeeze=False)
    ax = axes[0][0]
    for name, points in curves.losses.items():
        ax.plot(*zip(*points, strict=True), label=name, linewidth=0.8)
    ax.set(xlabel="iteration", ylabel="loss", yscale="log" if curves.losses else "linear", title="training loss")
    for ax, metric in zip(axes[0][1:], names, strict=True):
        for (dataset, name), points in curves.metrics.items():
            if name == metric:
                ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=dataset)
        ax.set(xlabel="iteration", ylabel=metric.upper(), title=f"validation {metric.upper()}")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
