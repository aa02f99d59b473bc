"""metrics.json rows and tables: per-run rows with bicubic, reference and delta; the paper-style merge."""

from __future__ import annotations

from plksr_arch.evaluation.report import merge_rows, run_rows, to_csv, to_latex, to_markdown

from ..conftest import metrics_report


def test_run_rows_with_bicubic_reference_and_delta() -> None:
    header, rows = run_rows(metrics_report("a", 4, 32.4567, ref={"psnr": 32.3, "ssim": 0.9}))
    assert header == [
        "dataset",
        "images",
        "PSNR",
        "SSIM",
        "bicubic PSNR",
        "bicubic SSIM",
        "paper PSNR",
        "paper SSIM",
        "delta PSNR",
        "delta SSIM",
    ]
    assert rows[0] == ["Set5", "5", "32.46", "0.9123", "28.40", "0.8100", "32.30", "0.9000", "+0.16", "+0.0123"]
    assert rows[1][8] == "-2.84"
    header, rows = run_rows(metrics_report("a", 4, 32.0))
    assert len(header) == 6 and rows[1][:3] == ["Set14", "5", "29.00"]
    md = to_markdown(header, rows).splitlines()
    assert (
        md[0] == "| dataset | images | PSNR | SSIM | bicubic PSNR | bicubic SSIM |"
        and md[1] == "|---|" * 1 + "---|" * 5
    )
    assert to_csv(header, rows).splitlines()[1] == "Set5,5,32.00,0.9123,28.40,0.8100"


def test_merge_rows_paper_style() -> None:
    reports = [metrics_report("run_x4", 4, 32.0, ref={"psnr": 32.2, "ssim": 0.9}), metrics_report("run_x2", 2, 38.0)]
    header, rows = merge_rows(reports)
    assert header == ["scale", "method", "Set5", "Set14"]
    assert rows == [
        ["x2", "Bicubic", "28.40/0.8100", "28.40/0.8100"],
        ["x2", "run_x2", "38.00/0.9123", "35.00/0.9123"],
        ["x4", "Bicubic", "28.40/0.8100", "28.40/0.8100"],
        ["x4", "R (reported)", "32.20/0.9000", "32.20/0.9000"],
        ["x4", "run_x4", "32.00/0.9123", "29.00/0.9123"],
    ]
    latex = to_latex(header, rows).splitlines()
    assert latex[0] == r"\begin{tabular}{lccc}" and latex[2] == r"scale & method & Set5 & Set14 \\"
    assert r"x4 & run\_x4 & 32.00/0.9123 & 29.00/0.9123 \\" in latex and latex[-1] == r"\end{tabular}"
