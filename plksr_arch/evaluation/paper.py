"""The PLKSR paper's result tables, shipped as package data (Lee, Yun, Ro 2024, arXiv 2404.11848).

`resources/paper_results.yml`: PSNR/SSIM (Y channel, border = scale) of every row of the paper's three result tables
(PLKSR on DIV2K, PLKSR-tiny, PLKSR on DF2K; x2/x3/x4; Set5, Set14, B100, Urban100, Manga109) and of every method
they compare with, in the reference-file format (`references.py`), keys `<method>_<train set>_x<scale>`.
`resources/paper_efficiency.yml`: the latency (ms) and maximum GPU memory (MB) of the same rows, HD (1280x720) output,
RTX 4090, FP16. The official repository publishes the tables as images (figs/Quantitative*.png); both files were
transcribed from them twice and checked against each other.

`val.reference_file: paper` (the default) names the results file; the rows of one table share their `source`.
"""

from __future__ import annotations

import functools
import os.path as osp
import re
from typing import Any, NamedTuple

import yaml

from plksr_arch.errors import UserError
from plksr_arch.evaluation.references import ReferenceFileError, load_references

DATA = osp.join(osp.dirname(osp.dirname(__file__)), "resources")
RESULTS = osp.join(DATA, "paper_results.yml")
EFFICIENCY = osp.join(DATA, "paper_efficiency.yml")
NAME = "paper"  # the `val.reference_file` value that means RESULTS
VARIANTS = ("PLKSR", "PLKSR-tiny")
DATASETS = ("Set5", "Set14", "B100", "Urban100", "Manga109")
_KEY = re.compile(r"^(?P<method>.+)_(?P<train>[A-Za-z0-9]+)_x(?P<scale>\d+)$")


class Row(NamedTuple):
    """A row of the paper's tables: `key` = `<method>_<train>_x<scale>`."""

    key: str
    method: str
    train: str
    scale: int

    @property
    def label(self) -> str:
        return f"{self.method} ({self.train}, paper)"


def parse(key: str) -> Row | None:
    """The row a key names, or None when it does not have the `<method>_<train>_x<scale>` form."""
    match = _KEY.match(key)
    return Row(key, match["method"], match["train"], int(match["scale"])) if match else None


@functools.cache
def results() -> dict[str, dict[str, Any]]:
    """The paper's PSNR/SSIM rows, in the paper's order."""
    return load_references(RESULTS)


@functools.cache
def efficiency() -> dict[str, dict[str, float]]:
    """The paper's latency (ms) / GPU memory (MB) rows: {key: {latency_ms, memory_mb}}."""
    with open(EFFICIENCY, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    for key, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != {"latency_ms", "memory_mb"}:
            raise ReferenceFileError(f"{EFFICIENCY}: {key}: expected {{latency_ms: ..., memory_mb: ...}}")
    return data


def rows(scale: int | None = None) -> list[Row]:
    """Every row of the results file (of one scale), in the paper's order."""
    parsed = [parse(key) for key in results()]
    return [r for r in parsed if r is not None and (scale is None or r.scale == scale)]


def methods() -> list[str]:
    """Every method of the paper's tables, in order of first appearance."""
    return list(dict.fromkeys(r.method for r in rows()))


def table_of(key: str) -> list[Row]:
    """The rows of the paper table that holds `key` (same scale and same `source`), `key`'s own row included."""
    entry, row = results().get(key), parse(key)
    if entry is None or row is None:
        return []
    return [r for r in rows(row.scale) if results()[r.key].get("source") == entry.get("source")]


def variant_tables(scale: int) -> list[Row]:
    """The rows of the paper's DIV2K tables of PLKSR and PLKSR-tiny at `scale` (main table, table of tiny models),
    each once, in the paper's order."""
    return list(dict.fromkeys(r for v in VARIANTS for r in table_of(f"{v}_DIV2K_x{scale}")))


def compared_rows(reference_keys: list[str], scale: int, wanted: list[str] | None = None) -> list[Row]:
    """The paper's rows to print beside runs at `scale`: with `wanted` (method names), every row of those methods;
    otherwise the methods compared with the runs' references (their tables), or the main (DIV2K) table's when no run
    has a paper reference. The reference rows themselves are left out (tables print them already)."""
    if wanted is not None:
        unknown = [m for m in wanted if m not in methods()]
        if unknown:
            raise UserError(f"--paper: unknown method(s) {', '.join(unknown)} (the paper has: {', '.join(methods())})")
        return [r for r in rows(scale) if r.method in wanted and r.key not in reference_keys]
    own = [k for k in reference_keys if k in results()] or [f"PLKSR_DIV2K_x{scale}"]
    tables = [r for key in own for r in table_of(key)]
    return [r for r in dict.fromkeys(tables) if r.key not in reference_keys and r.method not in VARIANTS]


def citation() -> str:
    """Where the shipped rows come from, for a line under a table."""
    return (
        "Lee, Yun, Ro, 'Partial Large Kernel CNNs for Efficient Super-Resolution', arXiv 2404.11848 (2024), result "
        "tables as published in the official repository (figs/Quantitative*.png); peers as the paper reports them"
    )


def efficiency_of(key: str) -> dict[str, float]:
    """The paper's latency/memory of one row; ReferenceFileError naming the key when the paper has none."""
    entry = efficiency().get(key)
    if entry is None:
        raise ReferenceFileError(f"{EFFICIENCY}: no latency/memory for {key!r}")
    return entry
