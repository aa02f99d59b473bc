"""Rendering of `plksr bench` reports (`bench.protocol.bench`'s JSON dict): the Markdown table with the limit line
and the latency ratios, the comparison with the paper's efficiency claims, and the latency-vs-PSNR plots of the
paper's Fig. 1 (its figures beside this machine's)."""

from __future__ import annotations

from plksr_arch.errors import UserError


def table(report: dict) -> str:
    """Markdown table of a `bench` report, with the limit line and the ratios."""
    lines = [
        f"HD output {report['output'][1]}x{report['output'][0]} from {report['input'][1]}x{report['input'][0]}, "
        f"x{report['scale']}, {report['device']}, torch {report['torch']}, median of {report['runs']} runs",
        "",
        "| model | mode | latency (ms) | peak memory (MiB) | GFLOPs | params | TFLOP/s | share of limit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['label']} | {r['mode']} | {r['latency_ms']:.1f} | {r['peak_mib']:.1f} | {r['gflops']:.1f} | "
            f"{r['params']:,} | {r['tflops']:.3f} | {100 * r['limit_share']:.0f}% |"
        )
    limit = ", ".join(f"{m} {v:.3f} TFLOP/s" for m, v in report["limit_tflops"].items())
    lines += ["", f"Limit ({report['limit']}): {limit}"]
    lines += [f"{r['label']}: first call {r['first_call_s']:.1f} s" for r in report["results"] if r.get("first_call_s")]
    lines += [f"{k} latency / PLKSR latency: {v:.2f}" for k, v in report["speedups"].items()]
    return "\n".join(lines)


def paper_comparison(report: dict) -> list[dict]:
    """For each measured method of the paper's DIV2K tables (PLKSR's main table, PLKSR-tiny's table of tiny models):
    the PLKSR variant the paper compares it with, and the latency and peak-memory change of that variant against it,
    as the paper reports it (RTX 4090, FP16) and as measured in `report` (each model in its fastest mode)."""
    from plksr_arch.evaluation import paper

    scale, measured = report["scale"], {r["label"]: r for r in report["results"]}
    rows = []
    for variant in paper.VARIANTS:
        key = f"{variant}_DIV2K_x{scale}"
        if variant not in measured:
            continue
        for row in paper.table_of(key):
            if row.method in paper.VARIANTS or row.method not in measured:
                continue
            ours, theirs = paper.efficiency_of(key), paper.efficiency_of(row.key)
            mine, peer = measured[variant], measured[row.method]
            rows.append(
                {
                    "variant": variant,
                    "peer": row.method,
                    "paper": {
                        "latency": ours["latency_ms"] / theirs["latency_ms"] - 1,
                        "memory": ours["memory_mb"] / theirs["memory_mb"] - 1,
                    },
                    "measured": {
                        "latency": mine["latency_ms"] / peer["latency_ms"] - 1,
                        "memory": mine["peak_mib"] / peer["peak_mib"] - 1,
                    },
                }
            )
    return rows


def not_measured(report: dict) -> list[str]:
    """Methods of the paper's DIV2K tables at the report's scale that it does not hold (no implementation here)."""
    from plksr_arch.evaluation import paper

    measured = {r["label"] for r in report["results"]}
    methods = dict.fromkeys(r.method for r in paper.variant_tables(report["scale"]))
    return [m for m in methods if m not in measured and m not in paper.VARIANTS]


def paper_table(report: dict) -> str:
    """Markdown: per compared peer, the paper's latency/memory change of PLKSR (or PLKSR-tiny) and ours."""
    rows = report.get("paper") or paper_comparison(report)
    lines = [
        f"Against the paper (x{report['scale']}; paper: RTX 4090, FP16, HD output; here: {report['device']}, "
        "each model in its fastest mode). Change of the PLKSR variant against each peer, negative = less:",
        "",
        "| PLKSR variant | vs | latency (paper) | latency (here) | peak memory (paper) | peak memory (here) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        p, m = r["paper"], r["measured"]
        lines.append(
            f"| {r['variant']} | {r['peer']} | {100 * p['latency']:+.1f}% | {100 * m['latency']:+.1f}% | "
            f"{100 * p['memory']:+.1f}% | {100 * m['memory']:+.1f}% |"
        )
    missing = not_measured(report)
    if missing:
        lines += ["", f"Not measured (no implementation in basicsr or spandrel): {', '.join(missing)}"]
    return "\n".join(lines)


def _urban100_psnr(method: str, scale: int) -> float | None:
    """Urban100 PSNR of the paper's first row of `method` at `scale` (its DIV2K row where it has one)."""
    from plksr_arch.evaluation import paper
    from plksr_arch.evaluation.references import entry_values

    row = next((r for r in paper.rows(scale) if r.method == method), None)
    values = entry_values(paper.results()[row.key], "Urban100") if row else None
    return values.get("psnr") if values else None


def plot(report: dict, path: str) -> list[str]:
    """Two panels in the style of the paper's Fig. 1, Urban100 PSNR (the paper's) against latency, marker area ~
    memory: the paper's latencies (RTX 4090, FP16) of the methods of its DIV2K tables, and the latencies measured in
    `report` (PLKSR's reference run left out). Returns the measured models the paper has no PSNR for (left out too).
    Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plksr_arch.evaluation import paper

    scale = report["scale"]
    published = {}
    for row in paper.variant_tables(scale):
        psnr = None if row.method in published else _urban100_psnr(row.method, scale)
        if psnr is not None:
            eff = paper.efficiency_of(row.key)
            published[row.method] = (eff["latency_ms"], psnr, eff["memory_mb"])
    here, missing = {}, []
    for r in report["results"]:
        if r["label"] != r["model"]:  # PLKSR's reference run: the same network, one point per method
            continue
        psnr = _urban100_psnr(r["model"], scale)
        if psnr is None:
            missing.append(r["label"])
        else:
            here[r["label"]] = (r["latency_ms"], psnr, r["peak_mib"])
    if not here:
        raise UserError(f"none of the measured models is in the paper's tables at x{scale}: nothing to plot")
    from plksr_arch.archs.registry import presets

    ours = set(presets())  # the points are models, by name
    palette = plt.get_cmap("tab20").colors
    colours = {name: palette[i % len(palette)] for i, name in enumerate(dict.fromkeys([*published, *here]))}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    panels = [(axes[0], published, "paper: RTX 4090, FP16", "MB"), (axes[1], here, report["device"], "MiB")]
    for ax, points, where, unit in panels:
        largest = max(p[2] for p in points.values()) or 1.0
        for name, (ms, psnr, memory) in points.items():
            bold = name in ours
            ax.scatter(ms, psnr, s=40 + 1500 * memory / largest, alpha=0.6, color=colours[name])
            weight = "bold" if bold else "normal"
            ax.annotate(name, (ms, psnr), textcoords="offset points", xytext=(6, 6), fontweight=weight)
        ax.set(xlabel=f"latency (ms), {where}", ylabel=f"Urban100 x{scale} PSNR (dB), paper")
        ax.set_title(f"{where} (marker area ~ peak memory, {unit})", fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(f"PSNR vs latency at HD output, x{scale}: the paper's figures and this machine's")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return missing
