"""The paper's tables by default: `plksr test` of a released configuration, `plksr table --paper`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plksr_arch import plksr_tiny

from ..conftest import make_pairs, metrics, paired_dataset, write_yaml


def test_released_configuration_prints_paper_row_and_delta(tmp_path: Path, monkeypatch, capsys) -> None:
    """No reference option: a PLKSR-tiny x4 named as the DIV2K release gets the paper's Set5 row and our delta, and
    `plksr table --paper` adds the methods of the paper's table of tiny models around it."""
    from plksr_arch.cli import main
    from plksr_arch.evaluation import paper

    data = make_pairs(tmp_path / "Set5", 2, 4, size=48, seed=1)
    torch.save({"params": plksr_tiny(4).state_dict()}, tmp_path / "PLKSR-tiny_x4.pth")
    opt = {
        "name": "test_PLKSR-tiny_DIV2K_x4",
        "model_type": "PLKSRModel",
        "scale": 4,
        "num_gpu": 0,
        "datasets": {"test_1": paired_dataset("Set5", data)},
        "network_g": {"type": "PLKSR", "dim": 64, "n_blocks": 12, "kernel_size": 13, "use_ea": False},
        "path": {"pretrain_network_g": str(tmp_path / "PLKSR-tiny_x4.pth")},
        "val": {"metrics": metrics(4)},
    }
    monkeypatch.chdir(tmp_path)
    assert main(["test", "-opt", str(write_yaml(tmp_path / "t.yml", opt))]) == 0
    out = capsys.readouterr().out
    published = paper.results()["PLKSR-tiny_DIV2K_x4"]["Set5"]
    assert "reference: PLKSR-tiny_DIV2K_x4 (Lee, Yun, Ro 2024" in out
    assert "| paper PSNR | paper SSIM | delta PSNR | delta SSIM |" in out
    assert f"| {published['psnr']:.2f} | {published['ssim']:.4f} | " in out

    assert main(["table", "results/test_PLKSR-tiny_DIV2K_x4", "--paper"]) == 0
    rows = [line.split(" | ")[1] for line in capsys.readouterr().out.splitlines() if line.startswith("| x4")]
    assert rows == [
        "Bicubic",
        "DITN-tiny (DIV2K, paper)",
        "DITN-real (DIV2K, paper)",
        "ShuffleMixer (DF2K, paper)",
        "SAFMN (DF2K, paper)",
        "PLKSR-tiny (DIV2K, paper)",
        "test_PLKSR-tiny_DIV2K_x4",
    ]
    assert main(["table", "results/test_PLKSR-tiny_DIV2K_x4", "--paper", "SwinIR-light"]) == 0
    rows = [line.split(" | ")[1] for line in capsys.readouterr().out.splitlines() if line.startswith("| x4")]
    assert rows[1:3] == ["SwinIR-light (DIV2K, paper)", "PLKSR-tiny (DIV2K, paper)"]


def test_table_of_paper_rows_alone(capsys) -> None:
    """`plksr table --paper` without runs prints the paper's main table; a method it lacks is a one-line error."""
    from plksr_arch.cli import main
    from plksr_arch.evaluation import paper

    assert main(["table", "--paper"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| scale | method | Set5 | Set14 | B100 | Urban100 | Manga109 |"
    x4 = {line.split(" | ")[1]: line for line in lines if line.startswith("| x4")}
    assert list(x4)[:2] == ["EDSR (DIV2K, paper)", "SwinIR-light (DIV2K, paper)"]
    plksr = paper.results()["PLKSR_DIV2K_x4"]["Urban100"]
    assert f"| {plksr['psnr']:.2f}/{plksr['ssim']:.4f} |" in x4["PLKSR (DIV2K, paper)"]
    assert lines[-1].startswith("Paper rows: Lee, Yun, Ro")
    assert main(["table", "--paper", "SwinIR,OmniSR"]) == 2
    assert "--paper: unknown method(s) SwinIR (the paper has: EDSR, SwinIR-light" in capsys.readouterr().err
    assert main(["table"]) == 2


@pytest.mark.parametrize("name", ["paper_results.yml", "paper_efficiency.yml"])
def test_packaged_tables_are_the_shared_references(name: str) -> None:
    """The package ships ../shared/references' transcriptions unchanged."""
    from plksr_arch.evaluation import paper

    from ..conftest import shared

    assert Path(paper.DATA, name).read_bytes() == shared(f"references/{name}").read_bytes()


def test_bench_paper_prints_our_ratios_beside_the_papers(tmp_path: Path, monkeypatch, capsys) -> None:
    """`plksr bench --paper` (on a small output instead of HD, for time): the paper's ratio and ours per peer."""
    pytest.importorskip("spandrel")
    import json

    from plksr_arch.bench import protocol as benchmark
    from plksr_arch.cli import main

    monkeypatch.setattr(benchmark, "HD", (48, 64))
    args = ["bench", "--paper", "--models", "PLKSR-tiny,SAFMN", "--runs", "1", "--warmup", "0"]
    assert main([*args, "--json", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| PLKSR-tiny | SAFMN |"))
    assert row.split(" | ")[2:5:2] == ["-48.6%", "+19.4%"]  # the paper: 3.6 vs 7.0 ms, 65.3 vs 54.7 MB
    report = json.loads((tmp_path / "b.json").read_text())
    measured = {r["label"]: r for r in report["results"]}
    latency = measured["PLKSR-tiny"]["latency_ms"] / measured["SAFMN"]["latency_ms"] - 1
    assert report["paper"][0]["measured"]["latency"] == pytest.approx(latency)
    assert f"{100 * latency:+.1f}%" in row


@pytest.mark.parametrize("variant", ["PLKSR", "PLKSR-tiny"])
def test_every_paper_row_has_option_files_of_its_configuration(variant: str) -> None:
    """Each PSNR/SSIM row of the packaged tables (docs/testing.md renders them) has the train and test option files
    that reproduce it, with the row's scale and the variant's network."""
    import inspect

    import yaml

    from plksr_arch.archs import PLKSR, PRESETS
    from plksr_arch.evaluation import paper

    from ..conftest import REPO

    defaults = {k: p.default for k, p in inspect.signature(PLKSR).parameters.items()}
    for train in ("DIV2K", "DF2K"):
        for scale in (2, 3, 4):
            key = f"{variant}_{train}_x{scale}"
            assert key in paper.results() and paper.efficiency_of(key)
            for kind in ("train", "test"):
                opt = yaml.safe_load((REPO / "options" / kind / f"{kind}_{key}.yml").read_text())
                network = {k: v for k, v in opt["network_g"].items() if k != "type"}
                config = {**defaults, **network}
                assert opt["network_g"]["type"] == "PLKSR" and opt["scale"] == config["upscaling_factor"] == scale
                assert {k: config[k] for k in PRESETS[variant]} == PRESETS[variant]
