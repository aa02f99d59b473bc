"""Rendering of `plksr bench` reports (`benchmark.bench`'s JSON dict): the Markdown table with the GEMM line and the
latency ratios, and the latency-vs-PSNR plot in the style of the paper's Fig. 1."""

from __future__ import annotations

from ..errors import UserError


def table(report: dict) -> str:
    """Markdown table of a `bench` report, with the GEMM line and the ratios."""
    lines = [
        f"HD output {report['output'][1]}x{report['output'][0]} from {report['input'][1]}x{report['input'][0]}, "
        f"x{report['scale']}, {report['device']}, torch {report['torch']}, median of {report['runs']} runs",
        "",
        "| model | mode | latency (ms) | peak memory (MiB) | GFLOPs | params | TFLOP/s | share of GEMM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['label']} | {r['mode']} | {r['latency_ms']:.1f} | {r['peak_mib']:.1f} | {r['gflops']:.1f} | "
            f"{r['params']:,} | {r['tflops']:.3f} | {100 * r['gemm_share']:.0f}% |"
        )
    gemm = ", ".join(f"{m} {v:.3f} TFLOP/s" for m, v in report["gemm_tflops"].items())
    lines += ["", f"GEMM (4096^3 matmul): {gemm}"]
    lines += [f"{k} latency / PLKSR latency: {v:.2f}" for k, v in report["speedups"].items()]
    return "\n".join(lines)


def plot(report: dict, references: dict, path: str) -> list[str]:
    """Latency vs Urban100 PSNR (the paper's Fig. 1 style) for the models `references` has Urban100 values for,
    under keys `<model>_x<scale>`; returns the models left out. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .references import lookup

    points, missing = [], []
    for r in report["results"]:
        ref = lookup(references, f"{r['model']}_x{report['scale']}", "Urban100")
        if ref and "psnr" in ref:
            points.append((r["latency_ms"], ref["psnr"], r["peak_mib"], r["label"]))
        else:
            missing.append(r["label"])
    if not points:
        raise UserError("no model has an Urban100 PSNR in the reference file (keys like 'PLKSR_x4')")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    largest = max(p[2] for p in points) or 1.0
    for ms, psnr, mib, name in points:
        ax.scatter(ms, psnr, s=40 + 1500 * mib / largest, alpha=0.5)
        ax.annotate(name, (ms, psnr), textcoords="offset points", xytext=(6, 6))
    ax.set(xlabel=f"latency (ms), {report['device']}", ylabel=f"Urban100 x{report['scale']} PSNR (dB)")
    ax.set_title("latency vs PSNR (marker area ~ peak memory)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return missing
