"""End-to-end runs of the `plksr` command in subprocesses: train (disk, LMDB) + plot, test + table, demo, prepare,
torchrun, infer, bench. Faults (bad options, data and weights, signals, failing saves) are in tests/faults."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from plksr_arch.training.demo_pipeline import tiers

from ..conftest import make_pairs, metrics, paired_dataset, run_plksr, train_options, write_yaml

pytestmark = pytest.mark.slow


@pytest.fixture
def data(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    return {"train": make_pairs(tmp_path / "train", 6, 2), "val": make_pairs(tmp_path / "val", 2, 2, seed=1)}


def test_train_on_disk_writes_weights_states_and_log(tmp_path, data) -> None:
    opt = write_yaml(tmp_path / "train.yml", train_options(data["train"], data["val"]))
    proc = run_plksr("train", "-opt", str(opt), "--force_yml", "train:total_iter=6", "val:val_freq=2", cwd=tmp_path)
    exp = tmp_path / "experiments" / "tiny"
    assert {p.name for p in (exp / "models").iterdir()} == {
        "net_g_2.pth",
        "net_g_4.pth",
        "net_g_6.pth",
        "net_g_latest.pth",
        "net_g_best.pth",  # the weights of the best validation PSNR
    }
    assert {p.name for p in (exp / "training_states").iterdir()} == {"2.state", "4.state", "6.state"}
    state = torch.load(exp / "models" / "net_g_latest.pth", weights_only=True)
    assert set(state) == {"params", "architecture", "hyperparameters"} and state["architecture"] == "PLKSR"
    assert "feats.1.channe_mixer.0.weight" in state["params"] and state["hyperparameters"]["dim"] == 16
    log = next(exp.glob("train_tiny_*.log")).read_text()
    assert re.search(r"iter:\s+6, lr:", log) and "l_pix:" in log and "eta:" in log
    assert "Validation tiny_val (iter 2)" in log and "# psnr:" in log
    best = re.findall(r"Best psnr on tiny_val so far \(\S+ at iter (\d+)\)", log)[-1]
    best_weights = torch.load(exp / "models" / "net_g_best.pth", weights_only=True)["params"]
    at_best = torch.load(exp / "models" / f"net_g_{best}.pth", weights_only=True)["params"]
    assert all(torch.equal(v, at_best[k]) for k, v in best_weights.items())
    assert f"Latest weights: {exp / 'models' / 'net_g_latest.pth'}" in proc.stdout
    plot = run_plksr("plot", str(exp), cwd=tmp_path)
    assert "(1 losses, 6 validation points from 1 log(s))" in plot.stdout  # psnr and ssim at iterations 2, 4, 6
    assert (exp / "curves.png").stat().st_size > 10_000


def test_train_module_entry_point_and_lmdb_backend(tmp_path, data) -> None:
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs

    gt, lq = data["train"]
    names = sorted(p.name for p in gt.iterdir())
    keys = [n[:-4] for n in names]
    make_lmdb_from_imgs(str(gt), str(tmp_path / "gt.lmdb"), names, keys, n_thread=1)
    make_lmdb_from_imgs(str(lq), str(tmp_path / "lq.lmdb"), names, keys, n_thread=1)
    opt = train_options((tmp_path / "gt.lmdb", tmp_path / "lq.lmdb"), name="tiny_lmdb")
    opt["datasets"]["train"]["io_backend"] = {"type": "lmdb"}
    path = write_yaml(tmp_path / "lmdb.yml", opt)
    proc = subprocess.run(
        [sys.executable, "-m", "plksr_arch.train", "-opt", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "experiments" / "tiny_lmdb" / "models" / "net_g_latest.pth").is_file()


def test_test_command_writes_metrics_json(tmp_path, data) -> None:
    from plksr_arch import PLKSR as Net

    from ..conftest import TINY_NET

    net_opt = {k: v for k, v in TINY_NET.items() if k != "type"}
    weights = tmp_path / "w.pth"
    torch.save({"params": Net(**net_opt, upscaling_factor=2).state_dict()}, weights)
    opt = {
        "name": "tiny_test",
        "model_type": "ESRModel",
        "scale": 2,
        "num_gpu": 1,
        "datasets": {"test_1": paired_dataset("tiny_val", data["val"])},
        "network_g": {**TINY_NET, "upscaling_factor": 2},
        "path": {"pretrain_network_g": str(weights), "strict_load_g": True},
        "val": {"save_img": True, "suffix": None, "metrics": metrics(2)},
    }
    proc = run_plksr("test", "-opt", str(write_yaml(tmp_path / "test.yml", opt)), cwd=tmp_path)
    results = tmp_path / "results" / "tiny_test"
    report = json.loads((results / "metrics.json").read_text())
    assert report["name"] == "tiny_test" and report["scale"] == 2 and report["variant"] is None
    entry = report["datasets"]["tiny_val"]
    assert entry["n_images"] == 2 and set(entry) == {
        "psnr",
        "ssim",
        "n_images",
        "bicubic",
        "images",
        "seconds",
        "images_per_second",
    }
    assert set(entry["bicubic"]) == {"psnr", "ssim"} and 10 < entry["bicubic"]["psnr"] < 60
    assert [i["name"] for i in entry["images"]] == ["img000", "img001"]
    assert f"| tiny_val | 2 | {entry['psnr']:.2f} | {entry['ssim']:.4f} |" in proc.stdout
    assert (results / "metrics.md").read_text().count("| tiny_val | 2 |") == 1
    assert (results / "metrics.csv").read_text().splitlines()[0].startswith("dataset,images,PSNR,SSIM")
    assert "tiny_val" in proc.stderr and "img/s" in proc.stderr  # the progress bar
    pictures = sorted(p.name for p in (results / "visualization" / "tiny_val").glob("*.png"))
    assert pictures == ["img000_strip.png", "img000_tiny_test.png", "img001_strip.png", "img001_tiny_test.png"]

    table = run_plksr("table", str(results), "--format", "csv", cwd=tmp_path)
    assert table.stdout.splitlines()[0] == "scale,method,tiny_val"
    assert table.stdout.splitlines()[2] == f"x2,tiny_test,{entry['psnr']:.2f}/{entry['ssim']:.4f}"


def test_short_demo_on_one_thread_beats_bicubic(tmp_path) -> None:
    """A budget too small for any tier: the smallest network trains for its floor, says so first, and wins."""
    demo = tmp_path / "demo"
    proc = run_plksr("demo", "--workdir", str(demo), "--minutes", "0.1", "--threads", "1", cwd=tmp_path)
    smallest = tiers()[-1]
    name = f"demo_{smallest.label}_x4"
    report = json.loads((demo / "results" / name / "metrics.json").read_text())
    entry = report["datasets"]["skimage_heldout"]
    assert entry["n_images"] == 2 and report["scale"] == 4
    assert {"psnr", "ssim"} <= set(entry) and {"psnr", "ssim"} == set(entry["bicubic"])
    assert entry["psnr"] > entry["bicubic"]["psnr"] + 0.1
    assert "| skimage_heldout | 2 |" in proc.stdout and "Metrics:" in proc.stdout
    assert f"{smallest.label} x4 after {smallest.floor} iterations beats bicubic on the held-out photos" in proc.stdout
    assert f"too slow to train a demo network well in 0.1 min: {smallest.label} needs {smallest.floor}" in proc.stdout
    train_log = next((demo / "experiments" / name).glob("train_*.log")).read_text()
    test_log = next((demo / "results" / name).glob("test_*.log")).read_text()
    assert "l_pix:" in train_log and "Validation skimage_heldout" not in train_log
    assert "Validation skimage_heldout" in test_log and "l_pix:" not in test_log


def test_prepare_builds_lmdbs_that_train(tmp_path) -> None:
    hr = tmp_path / "HR"
    hr.mkdir()
    make_pairs(tmp_path / "src", 3, 1, size=100)
    for p in (tmp_path / "src" / "GT").iterdir():
        p.rename(hr / p.name)
    out = tmp_path / "datasets" / "TOY"
    run_plksr(
        "prepare",
        str(hr),
        "--out",
        str(out),
        "--name",
        "TOY",
        "--scales",
        "2",
        "4",
        "--size",
        "48",
        "--step",
        "24",
        "--workers",
        "2",
        cwd=tmp_path,
    )
    import lmdb

    counts = {}
    for sub in ("TOY_train_HR_sub", "TOY_train_LR_bicubic_X2_sub", "TOY_train_LR_bicubic_X4_sub"):
        meta = (out / f"{sub}.lmdb" / "meta_info.txt").read_text().split("\n")
        counts[sub] = sorted(line.split()[0] for line in meta if line)
        env = lmdb.open(str(out / f"{sub}.lmdb"), readonly=True, lock=False)
        assert env.stat()["entries"] == len(counts[sub])
        env.close()
    # 100 px is a multiple of lcm(2, 4): offsets 0, 24, 48 and the flush 52 per side -> 16 sub-images per image
    assert len(counts["TOY_train_HR_sub"]) == 48
    assert counts["TOY_train_HR_sub"] == counts["TOY_train_LR_bicubic_X2_sub"] == counts["TOY_train_LR_bicubic_X4_sub"]
    opt = train_options(
        (out / "TOY_train_HR_sub.lmdb", out / "TOY_train_LR_bicubic_X4_sub.lmdb"), scale=4, name="toy_lmdb"
    )
    opt["datasets"]["train"]["io_backend"] = {"type": "lmdb"}
    run_plksr("train", "-opt", str(write_yaml(tmp_path / "toy.yml", opt)), cwd=tmp_path)
    assert (tmp_path / "experiments" / "toy_lmdb" / "models" / "net_g_latest.pth").is_file()


def test_prepare_rejects_bad_sizes(tmp_path) -> None:
    proc = run_plksr("prepare", str(tmp_path), "--out", "x", "--name", "X", "--size", "50", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "must be multiples of every scale" in proc.stderr
    proc = run_plksr("prepare", str(tmp_path / "none"), "--out", "x", "--name", "X", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "none: no such folder" in proc.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_node_torchrun_on_localhost(tmp_path, data) -> None:
    """The multi-node line of docs/training.md: two `torchrun --nnodes 2` launchers (one process each, node ranks
    0 and 1) meeting at a rendezvous on localhost, as two machines would at the first one's address;
    `--launcher pytorch` on CPUs (Gloo). Training reaches total_iter although each rank's loader drops its last
    incomplete batch (3 images per rank, batch 2). Several processes on one node: tests/e2e/test_real_world.py (GAN
    stage)."""
    path = write_yaml(tmp_path / "nodes.yml", train_options(data["train"], name="nodes"))
    port = _free_port()

    def node(rank: int) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={rank}"]
        cmd += ["--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={port}"]
        cmd += ["-m", "plksr_arch.train", "-opt", str(path), "--launcher", "pytorch"]
        return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    nodes = [node(0), node(1)]
    outputs = [p.communicate(timeout=300)[0] for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    exp = tmp_path / "experiments" / "nodes"
    assert {p.name for p in (exp / "models").iterdir()} == {"net_g_2.pth", "net_g_4.pth", "net_g_latest.pth"}
    (log,) = exp.glob("train_nodes_*.log")  # rank 0 alone writes the log
    assert "world_size: 2" in log.read_text() and re.search(r"iter:\s+4, lr:", log.read_text())


def test_infer_command_writes_same_names_keeps_alpha_and_16_bit(tmp_path) -> None:
    import cv2
    import numpy as np

    from plksr_arch import PLKSR as Net

    from ..conftest import TINY_NET

    weights = tmp_path / "w.pth"
    torch.save({"params_ema": Net(**{k: v for k, v in TINY_NET.items() if k != "type"}).state_dict()}, weights)
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(src / "rgb.jpg"), rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    cv2.imwrite(str(src / "alpha.png"), rng.integers(0, 256, (20, 24, 4), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "deep.tif"), rng.integers(0, 65536, (16, 16), dtype=np.uint16))
    (src / "broken.png").write_bytes(b"not an image")
    proc = run_plksr(
        "infer",
        str(weights),
        str(src),
        str(tmp_path / "*.tif"),
        "-o",
        str(tmp_path / "out"),
        "--tile",
        "16",
        "--tile-overlap",
        "4",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 1  # the unreadable file is reported, the others are written
    assert proc.stderr.count("plksr infer: error:") == 1 and "broken.png: cannot read this image" in proc.stderr
    assert "3 of 4 image(s) written" in proc.stdout and "img/s" in proc.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["alpha.png", "deep.tif", "rgb.jpg"]
    assert cv2.imread(str(out / "rgb.jpg")).shape == (80, 96, 3)
    assert cv2.imread(str(out / "alpha.png"), cv2.IMREAD_UNCHANGED).shape == (80, 96, 4)
    deep = cv2.imread(str(out / "deep.tif"), cv2.IMREAD_UNCHANGED)
    assert deep.shape == (64, 64) and deep.dtype == np.uint16


def test_bench_command_reports_table_json_and_speedups(tmp_path) -> None:
    proc = run_plksr(
        "bench",
        "--models",
        "PLKSR,EDSR-baseline",
        "--scale",
        "4",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--json",
        str(tmp_path / "b.json"),
        cwd=tmp_path,
    )
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["input"] == [180, 320] and report["output"] == [720, 1280]
    reference = "PLKSR (reference: fp32, NCHW, eager)"
    assert [r["label"] for r in report["results"]] == ["PLKSR", reference, "EDSR-baseline"]
    assert [r["model"] for r in report["results"]] == ["PLKSR", "PLKSR", "EDSR-baseline"]
    # Parameters and FLOPs per HD image are the networks' (PLKSR x4: the paper's model), whatever the machine
    assert [(r["params"], r["gflops"]) for r in report["results"]] == [
        (7_386_096, pytest.approx(849.7815552)),
        (7_386_096, pytest.approx(849.7815552)),
        (1_517_571, pytest.approx(228.4609536)),
    ]
    for r in report["results"]:  # each rate is the network's work over its measured latency
        assert r["tflops"] == pytest.approx(r["gflops"] / r["latency_ms"]) and r["peak_mib"] > 0
    assert "Limit (3x3 conv 256->256 at 128x128, channels_last): fp32" in proc.stdout and "| PLKSR |" in proc.stdout
    latency = {r["label"]: r["latency_ms"] for r in report["results"]}
    expected = {name: latency[name] / latency["PLKSR"] for name in (reference, "EDSR-baseline")}
    assert report["speedups"] == pytest.approx(expected)
    for name, ratio in expected.items():
        assert f"{name} latency / PLKSR latency: {ratio:.2f}" in proc.stdout


def test_bench_train_reports_both_trainers_memory_and_the_parts(tmp_path, data) -> None:
    """`plksr bench --train -opt`: ours and the SRModel baseline, alternately in their own processes, with peak
    memory and a breakdown of one step whose parts name the PLK block's."""
    opt = train_options(data["train"], model_type="ESRModel", use_amp=True)  # the official files' schema
    opt["datasets"]["train"]["num_worker_per_gpu"] = 16
    path = write_yaml(tmp_path / "official.yml", opt)
    proc = run_plksr(
        "bench", "--train", "-opt", str(path), "--runs", "2", "--warmup", "1", "--json", "t.json", cwd=tmp_path
    )
    report = json.loads((tmp_path / "t.json").read_text())
    assert [line.split(":")[0] for line in proc.stdout.splitlines() if line.startswith("round")] == [
        "round 1/2 ours",
        "round 1/2 baseline",
        "round 2/2 ours",
        "round 2/2 baseline",
    ]
    ours, baseline = report["runs"]["ours"][0], report["runs"]["baseline"][0]
    assert (ours["model"], baseline["model"]) == ("PLKSRModel", "SRModel")
    assert baseline["precision"] == "fp32" and baseline["routes"] == [] and baseline["workers"] == 16
    assert ours["workers"] < 16 and ours["routes"]
    for run in (ours, baseline):
        assert run["batch"] == [2, 3, 8, 8] and run["peak_rss_mib"] > 100 and run["peak_vram_mib"] is None
        assert run["images_per_s"] == pytest.approx(2 / run["s_per_iter"])
    best = {t: min(r["s_per_iter"] for r in runs) for t, runs in report["runs"].items()}
    assert report["speedup"] == pytest.approx(best["baseline"] / best["ours"])
    parts = {p["part"]: p for p in report["parts"]}
    assert {"channel mixer (DCCM)", "PLKC (7x7)", "EA", "refine (1x1)", "head/tail convs"} <= set(parts)
    assert {"loss", "optimizer", "data wait"} <= set(parts)
    assert parts["PLKC (7x7)"]["calls"] == 2 and parts["PLKC (7x7)"]["of_limit"] > 0
    assert "speed-up (best of each)" in proc.stdout and "sum of parts" in proc.stdout


def test_bench_video_reports_the_network_and_end_to_end_rates(tmp_path) -> None:
    pytest.importorskip("av")
    proc = run_plksr(
        "bench", "--video", "--frames", "3", "--size", "48x32", "--json", str(tmp_path / "v.json"), cwd=tmp_path
    )
    report = json.loads((tmp_path / "v.json").read_text())
    assert (report["frames"], report["size"], report["batch"]) == (3, [48, 32], 1)
    assert list(report["rows"]) == ["network", "end to end, in line", "end to end, writer thread"]
    network = report["rows"]["network"]["fps"]
    for row in report["rows"].values():  # each ratio is that pass's rate over the network's, from the same run
        assert row["ratio"] == pytest.approx(row["fps"] / network)
    assert "CPU flags:" in proc.stdout and "| end to end, in line |" in proc.stdout


def test_infer_upscales_a_video_into_the_named_file_with_its_sound(tmp_path) -> None:
    av = pytest.importorskip("av")
    from plksr_arch import PLKSR as Net
    from plksr_arch.data.clips import synthetic_clip

    from ..conftest import TINY_NET

    weights = tmp_path / "w.pth"
    torch.save({"params_ema": Net(**{k: v for k, v in TINY_NET.items() if k != "type"}).state_dict()}, weights)
    synthetic_clip(str(tmp_path / "clip.mov"), 8, (40, 24))
    proc = run_plksr(
        "infer", str(weights), "clip.mov", "-o", "clip_x4.mp4", "--crf", "20", "--preset", "fast", cwd=tmp_path
    )
    assert "clip_x4.mp4: 8 frame(s) in" in proc.stdout and "crf 20, preset fast" in proc.stdout
    with av.open(str(tmp_path / "clip_x4.mp4")) as out:
        assert [(s.type, s.codec_context.name) for s in out.streams] == [("video", "h264"), ("audio", "aac")]
        assert (out.streams.video[0].width, out.streams.video[0].height) == (160, 96)
