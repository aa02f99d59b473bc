"""metrics.json and the tables made from it: per-run Markdown/CSV (`metrics.md`, `metrics.csv`) and the
paper-style table of several runs (`plksr table`: rows = methods, columns = datasets, "PSNR/SSIM" cells).

metrics.json: {name, scale, variant, settings, reference: {key, source} | null, datasets: {<name>: {<metric>: mean,
n_images, seconds, images_per_second, bicubic: {<metric>: mean}, reference: {<metric>: value}, images: [{name,
<metric>, bicubic: {<metric>}}]}}}; `bicubic` only with ground truth, `reference` only where one is known.
"""

from __future__ import annotations

import csv
import io
import json
import os.path as osp
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from plksr_arch.evaluation.references import entry_values

FORMATS = ("md", "csv", "latex")
_SKIP = {"n_images", "bicubic", "reference", "images", "seconds", "images_per_second"}


def metric_names(report: dict) -> list[str]:
    """The metrics of a report, PSNR first, as they appear in its datasets."""
    names = {m for d in report["datasets"].values() for m in d if m not in _SKIP}
    return sorted(names, key=lambda m: (m != "psnr", m))


def _number(metric: str, value: float | None, signed: bool = False) -> str:
    """PSNR-like metrics with 2 decimals, SSIM-like with 4, as papers print them; '-' when absent."""
    if value is None:
        return "-"
    digits = 2 if "psnr" in metric.lower() else 4
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def run_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """One row per dataset: the run's metrics, the bicubic baseline, and the reference with our delta if known."""
    metrics = metric_names(report)
    with_ref = any("reference" in d for d in report["datasets"].values())
    header = ["dataset", "images", *(m.upper() for m in metrics), *(f"bicubic {m.upper()}" for m in metrics)]
    if with_ref:
        header += [*(f"paper {m.upper()}" for m in metrics), *(f"delta {m.upper()}" for m in metrics)]
    rows = []
    for name, d in report["datasets"].items():
        bicubic, ref = d.get("bicubic", {}), d.get("reference", {})
        row = [name, str(d["n_images"]), *(_number(m, d.get(m)) for m in metrics)]
        row += [_number(m, bicubic.get(m)) for m in metrics]
        if with_ref:
            row += [_number(m, ref.get(m)) for m in metrics]
            row += [_number(m, d[m] - ref[m] if m in ref and m in d else None, signed=True) for m in metrics]
        rows.append(row)
    return header, rows


def caption(report: dict) -> str:
    """One line naming the run, the network, the test-time settings and the reference."""
    settings = report.get("settings") or {}
    used = [k for k in ("self_ensemble", "use_amp") if settings.get(k)]
    if settings.get("tile"):
        used.append(f"tile {settings['tile']}/{settings.get('tile_overlap', 0)}")
    ref = report.get("reference")
    parts = [
        f"{report['name']}: {report.get('variant') or 'custom network'} x{report.get('scale')}",
        f"test-time: {', '.join(used) if used else 'plain'}",
        f"reference: {ref['key']} ({ref.get('source', 'no source given')})" if ref else "reference: none",
    ]
    return "; ".join(parts)


def to_markdown(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def to_csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


_LATEX = {"\\": r"\textbackslash{}", **{c: "\\" + c for c in "&%$#_{}"}}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX.get(c, c) for c in text)


def to_latex(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A booktabs tabular (needs `\\usepackage{booktabs}`)."""
    lines = [
        r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(_latex_escape(h) for h in header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


RENDER = {"md": to_markdown, "csv": to_csv, "latex": to_latex}


def format_table(report: dict) -> str:
    """The run's Markdown table (as in metrics.md, without the caption)."""
    return to_markdown(*run_rows(report))


def write_reports(report: dict, folder: str) -> dict[str, str]:
    """Write metrics.json, metrics.md (caption + table) and metrics.csv into `folder`; return their paths."""
    header, rows = run_rows(report)
    texts = {
        "json": json.dumps(report, indent=2),
        "md": f"{caption(report)}\n\n{to_markdown(header, rows)}\n",
        "csv": to_csv(header, rows),
    }
    paths = {}
    for ext, text in texts.items():
        paths[ext] = osp.join(folder, f"metrics.{ext}")
        with open(paths[ext], "w", encoding="utf-8") as f:
            f.write(text)
    return paths


def load_report(path: str) -> dict:
    """metrics.json of a results folder (or the file itself); FileNotFoundError naming the path otherwise."""
    file = osp.join(path, "metrics.json") if osp.isdir(path) else path
    if not osp.isfile(file):
        raise FileNotFoundError(f"{path}: no metrics.json (run `plksr test` first)")
    with open(file, encoding="utf-8") as f:
        try:
            report = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{file}: invalid JSON: {err}") from None
    if not isinstance(report, dict) or "datasets" not in report:
        raise ValueError(f"{file}: not a plksr metrics.json (no 'datasets')")
    return report


def _cell(values: dict[str, Any], metrics: Sequence[str]) -> str:
    if not all(m in values for m in metrics):
        return "-"
    return "/".join(_number(m, values[m]) for m in metrics)


def _reference_label(ref: dict) -> str:
    """`PLKSR (DIV2K, paper)` for a row of the shipped paper tables, `<key> (reported)` for other references."""
    from plksr_arch.evaluation import paper

    row = paper.parse(ref["key"])
    if row is not None and paper.results().get(ref["key"], {}).get("source") == ref.get("source"):
        return row.label
    return f"{ref['key']} (reported)"


PaperRows = Callable[[int, list[str]], list[tuple[str, dict]]]


def merge_rows(
    reports: Sequence[dict],
    metrics: Sequence[str] = ("psnr", "ssim"),
    paper_rows: PaperRows | None = None,
    scales: Iterable[int] = (),
) -> tuple[list[str], list[list[str]]]:
    """Paper-style rows for several runs: per scale a bicubic row, published rows (`paper_rows(scale, reference keys)`
    -> [(label, reference entry)]), each run's reference row once, then the runs. `scales` adds scales no run has
    (a table of published rows alone); with no runs the columns are the paper's datasets."""
    from plksr_arch.evaluation.paper import DATASETS

    datasets: list[str] = []
    for report in reports:
        datasets += [d for d in report["datasets"] if d not in datasets]
    datasets = datasets or list(DATASETS)
    header = ["scale", "method", *datasets]
    rows: list[list[str]] = []
    all_scales = {r.get("scale") for r in reports} | set(scales)
    for scale in sorted(all_scales, key=lambda s: (s is None, s)):
        group = [r for r in reports if r.get("scale") == scale]
        label = f"x{scale}" if scale else "-"
        bicubic = {d: v["bicubic"] for r in reversed(group) for d, v in r["datasets"].items() if "bicubic" in v}
        if bicubic:
            rows.append([label, "Bicubic", *(_cell(bicubic.get(d, {}), metrics) for d in datasets)])
        references = list({r["reference"]["key"]: r["reference"] for r in group if r.get("reference")}.values())
        if paper_rows is not None and scale is not None:
            for name, entry in paper_rows(scale, [ref["key"] for ref in references]):
                rows.append([label, name, *(_cell(entry_values(entry, d) or {}, metrics) for d in datasets)])
        for ref in references:
            values = {
                d: v["reference"]
                for r in group
                if (r.get("reference") or {}).get("key") == ref["key"]
                for d, v in r["datasets"].items()
                if "reference" in v
            }
            rows.append([label, _reference_label(ref), *(_cell(values.get(d, {}), metrics) for d in datasets)])
        for r in group:
            rows.append([label, r["name"], *(_cell(r["datasets"].get(d, {}), metrics) for d in datasets)])
    return header, rows
