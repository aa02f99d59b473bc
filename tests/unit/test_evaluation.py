"""Evaluation: self-ensemble, tiling, comparison strips, references, tables, curves and the in-process test run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from plksr_arch import PLKSR, PRESETS, plksr, plksr_tiny
from plksr_arch.evaluation.curves import parse_logs, plot_curves
from plksr_arch.evaluation.references import (
    ReferenceFileError,
    dataset_id,
    load_references,
    lookup,
    released_key,
    released_variant,
    train_set,
)
from plksr_arch.evaluation.report import merge_rows, run_rows, to_csv, to_latex, to_markdown
from plksr_arch.evaluation.strips import GAP, LABEL_HEIGHT, PANEL, comparison_strip, crop_box, strip_size
from plksr_arch.inference import check_tiling, self_ensemble, tile_starts, tiled_forward

from ..conftest import TINY_NET, bicubic_means, make_pairs, metrics, paired_dataset, psnr, write_yaml


def _tiny(scale: int = 2) -> PLKSR:
    return PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=scale).eval()


def test_self_ensemble_is_the_mean_of_the_eight_transformed_outputs() -> None:
    net = _tiny()
    x = torch.rand(1, 3, 12, 16)
    # The dihedral group written out by hand: (forward transform, inverse transform) pairs.
    t = lambda y: y.transpose(-2, -1)  # noqa: E731
    h = lambda y: y.flip(-1)  # noqa: E731
    v = lambda y: y.flip(-2)  # noqa: E731
    pairs = [
        (lambda y: y, lambda y: y),
        (h, h),
        (v, v),
        (lambda y: h(v(y)), lambda y: v(h(y))),
        (t, t),
        (lambda y: h(t(y)), lambda y: t(h(y))),
        (lambda y: v(t(y)), lambda y: t(v(y))),
        (lambda y: h(v(t(y))), lambda y: t(v(h(y)))),
    ]
    with torch.no_grad():
        expected = torch.stack([inv(net(fwd(x))) for fwd, inv in pairs]).mean(0)
        got = self_ensemble(net, x)
        plain = net(x)
    assert got.shape == (1, 3, 24, 32)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got, plain, atol=1e-4)  # the eight outputs really differ


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(10, 16, 4), (16, 16, 4), (40, 16, 4), (41, 16, 0), (100, 24, 8)]
)
def test_tile_starts_cover_with_the_overlap(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == max(0, length - tile)
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))


def test_tiled_forward_is_exact_for_a_pointwise_network() -> None:
    x = torch.rand(2, 3, 37, 53)
    conv = torch.nn.Conv2d(3, 12, 1)
    fn = lambda y: F.pixel_shuffle(conv(y), 2)  # noqa: E731
    with torch.no_grad():
        torch.testing.assert_close(tiled_forward(fn, x, 2, 16, 6), fn(x), rtol=1e-5, atol=1e-5)


def test_tiled_plksr_agrees_with_whole_image() -> None:
    net = _tiny()
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        whole = net(x)
        tiled = tiled_forward(net, x, 2, 24, 8)
    assert tiled.shape == whole.shape
    assert psnr(tiled.clamp(0, 1), whole.clamp(0, 1)) >= 40


@pytest.mark.parametrize(
    ("tile", "overlap", "message"), [(4, 0, "tile: 4"), (32, 16, "tile_overlap: 16"), (32, -1, "-1")]
)
def test_bad_tiling_is_a_value_error_naming_the_argument(tile: int, overlap: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_tiling(tile, overlap)


def test_comparison_strip_size_and_crop_where_models_differ() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    bicubic = gt.copy()
    sr = gt.copy()
    sr[150:200, 40:90] = 255 - sr[150:200, 40:90]  # the one place SR and bicubic differ
    top, left = crop_box(sr, bicubic, 48, 4)
    assert top % 4 == 0 and left % 4 == 0
    assert 150 - 48 < top <= 150 + 2 and 40 - 48 < left <= 40 + 2
    strip = comparison_strip(gt[::4, ::4], bicubic, sr, gt, 31.234, 28.5)
    assert strip.shape == (*strip_size(), 3) == (PANEL + LABEL_HEIGHT, 4 * PANEL + 3 * GAP, 3)
    assert strip.dtype == np.uint8
    assert (strip[LABEL_HEIGHT:, PANEL : PANEL + GAP] == 255).all()  # white gap between panels
    small = comparison_strip(gt[:30:3, :45:3], bicubic[:30, :45], sr[:30, :45], gt[:30, :45])
    assert small.shape == (*strip_size(), 3)


def test_released_variant_and_key() -> None:
    for name, preset in PRESETS.items():
        assert released_variant({"type": "PLKSR", **preset, "upscaling_factor": 3}) == name
    assert released_variant({"type": "PLKSR", "upscaling_factor": 4}) == "PLKSR"  # defaults = PLKSR
    assert released_variant(plksr_tiny(2)) == "PLKSR-tiny" and released_variant(plksr(3)) == "PLKSR"  # built networks
    assert released_variant(PLKSR(dim=32, upscaling_factor=4)) is None
    assert released_variant({**TINY_NET, "upscaling_factor": 2}) is None
    assert released_variant({"type": "SwinIR"}) is None
    assert train_set("train_PLKSR_DF2K_x4", None) == "DF2K"
    assert train_set("x", "/w/PLKSR_tiny_DIV2K_x2.pth") == "DIV2K"
    assert train_set("mine", None) == "DIV2K"
    opt = {"name": "t", "scale": 4, "network_g": {"type": "PLKSR", **PRESETS["PLKSR-tiny"], "upscaling_factor": 4}}
    opt["path"] = {"pretrain_network_g": "weights/PLKSR_tiny_DF2K_x4.pth"}
    assert released_key(opt) == "PLKSR-tiny_DF2K_x4"


def test_reference_files(tmp_path: Path) -> None:
    good = tmp_path / "refs.yml"
    good.write_text("M_x2:\n  source: a paper\n  Set5: {psnr: 38.0, ssim: 0.96}\n  BSD100: {psnr: 32.1}\n")
    refs = load_references(str(good))
    assert lookup(refs, "M_x2", "set5") == {"psnr": 38.0, "ssim": 0.96}
    assert lookup(refs, "M_x2", "B100") == {"psnr": 32.1}
    assert lookup(refs, "M_x2", "Urban100") is None and lookup(refs, "other", "Set5") is None
    assert dataset_id("BSDS100") == dataset_id("b100")
    bad = tmp_path / "bad.yml"
    bad.write_text("M_x2:\n  Set5: {psnr: high}\n")
    with pytest.raises(ReferenceFileError, match=r"bad.yml: M_x2.Set5: expected a mapping of metric names"):
        load_references(str(bad))
    with pytest.raises(ReferenceFileError, match="no such reference file"):
        load_references(str(tmp_path / "none.yml"))


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


def test_run_rows_with_bicubic_reference_and_delta() -> None:
    header, rows = run_rows(_report("a", 4, 32.4567, ref={"psnr": 32.3, "ssim": 0.9}))
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
    header, rows = run_rows(_report("a", 4, 32.0))
    assert len(header) == 6 and rows[1][:3] == ["Set14", "5", "29.00"]
    md = to_markdown(header, rows).splitlines()
    assert (
        md[0] == "| dataset | images | PSNR | SSIM | bicubic PSNR | bicubic SSIM |"
        and md[1] == "|---|" * 1 + "---|" * 5
    )
    assert to_csv(header, rows).splitlines()[1] == "Set5,5,32.00,0.9123,28.40,0.8100"


def test_merge_rows_paper_style() -> None:
    reports = [_report("run_x4", 4, 32.0, ref={"psnr": 32.2, "ssim": 0.9}), _report("run_x2", 2, 38.0)]
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


def test_curves_from_logs_including_a_resumed_run(tmp_path: Path) -> None:
    first, second = tmp_path / "train_tiny_20261128_100000.log", tmp_path / "train_tiny_20261128_110000.log"
    first.write_text(LOG)
    second.write_text(LOG.split("\n", 4)[0] + "\n" + LOG.replace("psnr: 25.1000", "psnr: 25.5000").split("\n", 3)[3])
    curves = parse_logs([str(first), str(second)])
    assert curves.losses == {"l_pix": [(10, 0.05), (20, 0.04), (1030, 0.03)]}
    assert curves.metrics[("Set5", "psnr")] == [(20, 25.5), (1030, 26.2)]  # the resumed run's value wins
    assert curves.metrics[("Set5", "ssim")] == [(20, 0.7)]
    pytest.importorskip("matplotlib")
    out = plot_curves(curves, str(tmp_path / "c.png"), "tiny")
    assert cv2.imread(out).shape == (400, 1500, 3)


def test_test_run_writes_consistent_reports(tmp_path: Path, monkeypatch) -> None:
    """A fixed random-weight checkpoint: per-image and mean metrics, bicubic, reference delta, md/csv, strips."""
    from plksr_arch.options import load_options
    from plksr_arch.test import test

    data = make_pairs(tmp_path / "val", 3, 2, size=48, seed=3)
    weights = tmp_path / "w.pth"
    torch.save({"params_ema": _tiny().state_dict()}, weights)
    refs = tmp_path / "refs.yml"
    refs.write_text("Mine:\n  source: my paper\n  tiny val: {psnr: 20.0, ssim: 0.5}\n")
    opt = {
        "name": "t",
        "model_type": "PLKSRModel",
        "scale": 2,
        "num_gpu": 0,
        "datasets": {"test_1": paired_dataset("tiny_val", data)},
        "network_g": {**TINY_NET, "upscaling_factor": 2},
        "path": {"pretrain_network_g": str(weights), "param_key_g": "params_ema", "strict_load_g": True},
        "val": {
            "save_img": True,
            "self_ensemble": True,
            "tile": 16,
            "tile_overlap": 4,
            "reference": "Mine",
            "reference_file": str(refs),
            "metrics": metrics(2),
        },
    }
    monkeypatch.chdir(tmp_path)
    report = test(load_options(str(write_yaml(tmp_path / "t.yml", opt)), is_train=False))
    saved = json.loads((tmp_path / "results" / "t" / "metrics.json").read_text())
    assert saved == report
    assert report["reference"] == {"key": "Mine", "source": "my paper"}
    assert report["settings"] == {"self_ensemble": True, "tile": 16, "tile_overlap": 4, "use_amp": False}
    entry = report["datasets"]["tiny_val"]
    assert entry["n_images"] == 3 and len(entry["images"]) == 3
    for metric in ("psnr", "ssim"):
        assert entry[metric] == pytest.approx(np.mean([i[metric] for i in entry["images"]]))
    assert entry["reference"] == {"psnr": 20.0, "ssim": 0.5}
    from basicsr.data import build_dataset

    dataset = build_dataset({**paired_dataset("v", data), "phase": "test", "scale": 2})
    assert entry["bicubic"] == pytest.approx(bicubic_means(dataset, metrics(2), 2))
    md = (tmp_path / "results" / "t" / "metrics.md").read_text()
    assert md.startswith("t: custom network x2; test-time: self_ensemble, tile 16/4; reference: Mine (my paper)")
    delta = entry["psnr"] - 20.0
    assert f"| 20.00 | 0.5000 | {delta:+.2f} |" in md
    csv_rows = (tmp_path / "results" / "t" / "metrics.csv").read_text().splitlines()
    assert len(csv_rows) == 2 and csv_rows[1].startswith(f"tiny_val,3,{entry['psnr']:.2f},")
    strips = sorted((tmp_path / "results" / "t" / "visualization" / "tiny_val").glob("*_strip.png"))
    assert len(strips) == 3 and all(cv2.imread(str(s)).shape == (*strip_size(), 3) for s in strips)


def test_reference_for_auto_explicit_and_missing(tmp_path: Path) -> None:
    from plksr_arch.test import reference_for

    refs = tmp_path / "refs.yml"
    refs.write_text("PLKSR-tiny_DF2K_x4:\n  source: s\n  Set5: {psnr: 32.0}\nOther_x4:\n  Set5: {psnr: 31.0}\n")
    net = {"type": "PLKSR", **PRESETS["PLKSR-tiny"], "upscaling_factor": 4}
    opt = {"name": "test_PLKSR-tiny_DF2K_x4", "scale": 4, "network_g": net, "path": {}}
    opt["val"] = {"reference_file": str(refs)}
    assert reference_for(opt)[0] == "PLKSR-tiny_DF2K_x4"
    opt["name"] = "test_PLKSR-tiny_DIV2K_x4"
    assert reference_for(opt) == (None, {})  # the file has no DIV2K row: no reference, no error
    opt["val"]["reference"] = "Other_x4"
    assert reference_for(opt)[0] == "Other_x4"
    opt["val"]["reference"] = "Nope"
    with pytest.raises(ReferenceFileError, match=r"refs.yml: val.reference: 'Nope' is not in the file"):
        reference_for(opt)
    assert reference_for({**opt, "val": {}}) == (None, {})


def test_plot_without_matplotlib_says_how_to_install(tmp_path: Path, monkeypatch, capsys) -> None:
    import importlib.util

    from plksr_arch.cli import main

    (tmp_path / "train_x_1.log").write_text(LOG)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["plot", str(tmp_path)]) == 2
    assert "plksr plot: error: matplotlib is not installed: pip install 'plksr-arch[plot]'" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "nowhere")]) == 2  # no logs: one line, exit 2
