"""Faults in option files and `--force_yml`: one line naming the file and key path, exit 2, no run folder made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import train_options, write_yaml
from .harness import fault, options_for_test, tiny_weights

pytestmark = pytest.mark.slow


def _set(path: str, value: object) -> Callable[[dict], None]:
    """An edit of the option dict: `path` is dotted (`train.total_iter`)."""

    def edit(opt: dict) -> None:
        *parents, leaf = path.split(".")
        node = opt
        for key in parents:
            node = node[key]
        node[leaf] = value

    return edit


# case -> (edit of a valid training option file, what the error line must name after the file name)
TRAIN_CASES = {
    "unknown_key": (_set("train.total_itr", 8), "train.total_itr: unknown key (did you mean 'total_iter'?)"),
    "network_argument_typo": (_set("network_g.dimm", 8), "network_g.dimm: unknown key (did you mean 'dim'?)"),
    "network_argument_value": (_set("network_g.dim", -4), "network_g: PLKSR: dim=-4 is invalid, expected a positive"),
    "wrong_type": (_set("train.ema_decay", "high"), "train.ema_decay: expected"),
    "scale_differs_from_network": (_set("network_g.upscaling_factor", 4), "network_g.upscaling_factor: 4 differs"),
    "gt_size_not_a_multiple_of_scale": (_set("datasets.train.gt_size", 15), "datasets.train.gt_size: 15: must be"),
    "missing_data_folder": (
        _set("datasets.train.dataroot_gt", "nowhere/GT"),
        "datasets.train.dataroot_gt: 'nowhere/GT' does not exist",
    ),
    "unknown_network_type": (_set("network_g.type", "PLKSRR"), "network_g.type: 'PLKSRR' is not registered"),
    "unknown_model_type": (_set("model_type", "PLKSRModle"), "model_type: 'PLKSRModle' is not registered"),
    "unknown_dataset_type": (_set("datasets.train.type", "PairedDataset"), "datasets.train.type: 'PairedDataset'"),
    "batch_larger_than_dataset": (
        _set("datasets.train.batch_size_per_gpu", 7),
        "datasets.train.batch_size_per_gpu: 7 x 1 process(es) is more than the 6 training images",
    ),
    "unknown_large_kernel_route": (
        _set("large_kernel", "fft"),
        "large_kernel: 'fft' is not one of auto, direct, spectral",
    ),
    "compile_not_a_choice": (_set("compile", "yes"), "compile: 'yes' is not one of auto, true, false"),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_train_option_fault(case: str, tmp_path: Path, data) -> None:
    edit, named = TRAIN_CASES[case]
    opt = train_options(data["train"])
    edit(opt)
    path = write_yaml(tmp_path / f"{case}.yml", opt)
    fault("train", "-opt", str(path), cwd=tmp_path, names=[f"{path}: {named}"], kept=[tmp_path])
    assert not (tmp_path / "experiments").exists() or case == "batch_larger_than_dataset"


def test_yaml_syntax_error_names_the_line(tmp_path: Path, data) -> None:
    text = write_yaml(tmp_path / "ok.yml", train_options(data["train"])).read_text().splitlines()
    line = text.index("train:") + 2  # 1-based number of the line after `train:`
    text.insert(line - 1, "    total_iter: [4")
    path = tmp_path / "broken.yml"
    path.write_text("\n".join(text) + "\n")
    fault("train", "-opt", str(path), cwd=tmp_path, names=[f"{path}: invalid YAML (line "], kept=[tmp_path])


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("datasets:trian:gt_size=16", "--force_yml 'datasets:trian:gt_size=16': datasets.trian is not a mapping"),
        ("train:total_iter", "--force_yml 'train:total_iter': expected KEY:SUBKEY=VALUE"),
        ("train:total_itr=8", "train.total_itr: unknown key (did you mean 'total_iter'?)"),
    ],
    ids=["missing_parent", "no_value", "unknown_leaf"],
)
def test_force_yml_with_a_bad_path(override: str, named: str, tmp_path: Path, data) -> None:
    path = write_yaml(tmp_path / "ok.yml", train_options(data["train"]))
    fault("train", "-opt", str(path), "--force_yml", override, cwd=tmp_path, names=[named], kept=[tmp_path])


def test_missing_option_file(tmp_path: Path) -> None:
    fault("test", "-opt", "nope.yml", cwd=tmp_path, names=["nope.yml: no such option file"])


def test_test_option_fault_names_the_key(tmp_path: Path, data) -> None:
    opt = options_for_test(data["val"], tiny_weights(tmp_path / "w.pth"))
    opt["datasets"]["test_1"]["dataroot_lq"] = "nowhere/LQ"
    path = write_yaml(tmp_path / "test.yml", opt)
    fault("test", "-opt", str(path), cwd=tmp_path, names=[f"{path}: datasets.test_1.dataroot_lq: 'nowhere/LQ'"])
    assert not (tmp_path / "results").exists()


def test_test_without_weights_is_refused(tmp_path: Path, data) -> None:
    """BasicSR would score a randomly initialised network."""
    opt = options_for_test(data["val"], tmp_path / "w.pth")
    opt["path"]["pretrain_network_g"] = None
    path = write_yaml(tmp_path / "test.yml", opt)
    fault("test", "-opt", str(path), cwd=tmp_path, names=[f"{path}: path.pretrain_network_g: missing: the weights"])


def test_debug_prints_the_traceback_too(tmp_path: Path, data) -> None:
    from .harness import run

    opt = train_options(data["train"])
    opt["train"]["total_itr"] = 8
    path = write_yaml(tmp_path / "typo.yml", opt)
    out = run("--debug", "train", "-opt", str(path), cwd=tmp_path)
    assert out.status == 2 and "Traceback (most recent call last)" in out.stderr
    assert out.errors == [f"plksr train: error: {path}: train.total_itr: unknown key (did you mean 'total_iter'?)"]
