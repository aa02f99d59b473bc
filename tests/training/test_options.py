"""Option files: every shipped file validates and builds; user mistakes give one-line errors naming file and key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from yaml import safe_load as yaml_load

from plksr_arch.training.options import (
    OptionsError,
    adopt_foreign_names,
    apply_overrides,
    load_options,
    read_yaml,
    validate,
)

from ..conftest import REPO, make_pairs, train_options, write_yaml

SHIPPED = sorted((REPO / "options").rglob("*.yml"))
REAL_WORLD = [p for p in SHIPPED if "_RealESR" in p.name]  # Real-ESRGAN's recipe; the others are the paper's


def test_every_released_model_has_train_and_test_files() -> None:
    names = {p.name for p in SHIPPED}
    for variant in ("PLKSR", "PLKSR-tiny"):
        for data in ("DIV2K", "DF2K"):
            for scale in (2, 3, 4):
                assert f"train_{variant}_{data}_x{scale}.yml" in names
                assert f"test_{variant}_{data}_x{scale}.yml" in names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_option_file_validates_and_builds(path: Path) -> None:
    from basicsr.archs import build_network

    from plksr_arch import PRESETS

    opt = read_yaml(str(path))
    adopt_foreign_names(opt, str(path))  # as load_options: Real-ESRGAN's model and dataset names read as ours
    validate(opt, str(path), is_train=path.name.startswith("train_"), check_paths=False)
    net_opt = dict(opt["network_g"])
    assert net_opt["upscaling_factor"] == opt["scale"]
    variant = "PLKSR-tiny" if "tiny" in path.name else "PLKSR"
    assert {k: net_opt[k] for k in PRESETS[variant]} == PRESETS[variant]
    assert build_network(net_opt).upscaling_factor == opt["scale"]
    for metric in opt["val"]["metrics"].values():  # Y-channel PSNR as the paper; RGB as Real-ESRGAN
        assert metric["crop_border"] == opt["scale"] and metric["test_y_channel"] is (path not in REAL_WORLD)


@pytest.mark.parametrize(
    "path", [p for p in SHIPPED if p.name.startswith("train_") and p not in REAL_WORLD], ids=lambda p: p.name
)
def test_train_files_follow_the_paper_recipe(path: Path) -> None:
    opt = read_yaml(str(path))
    train, ds = opt["train"], opt["datasets"]["train"]
    assert ds["gt_size"] == 96 * opt["scale"] and ds["batch_size_per_gpu"] == 64
    assert ds["io_backend"]["type"] == "lmdb" and ds["use_hflip"] and ds["use_rot"]
    assert train["pixel_opt"]["type"] == "L1Loss" and train["optim_g"]["betas"] == [0.9, 0.99]
    assert opt["use_amp"] is True
    finetune = path.name.startswith("train_PLKSR_") and opt["scale"] in (3, 4)  # PLKSR-tiny, RealPLKSR: scratch
    if finetune:
        assert train["optim_g"]["lr"] == 1e-4 and train["total_iter"] == 50_000
        assert "_x2/" in opt["path"]["pretrain_network_g"]
    else:
        assert train["optim_g"]["lr"] == 2e-4 and train["total_iter"] == 450_000
        assert train["scheduler"]["milestones"] == [100_000, 200_000, 300_000, 400_000, 425_000]
        assert train["scheduler"]["gamma"] == 0.5


def _error(opt: dict, tmp_path: Path, *, is_train: bool = True, check_paths: bool = False) -> str:
    path = write_yaml(tmp_path / "bad.yml", opt)
    with pytest.raises(OptionsError) as err:
        load_options(str(path), is_train=is_train, check_paths=check_paths, root=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    return make_pairs(tmp_path / "data", 2, 2)


def test_typo_in_network_is_named_with_suggestion(tmp_path, data) -> None:
    opt = train_options(data)
    opt["network_g"]["kernal_size"] = opt["network_g"].pop("kernel_size")
    assert "network_g.kernal_size: unknown key (did you mean 'kernel_size'?)" in _error(opt, tmp_path)


def test_official_use_pa_key_is_rejected(tmp_path, data) -> None:
    opt = train_options(data)
    opt["network_g"]["use_pa"] = False
    assert "network_g.use_pa: unknown key" in _error(opt, tmp_path)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda o: o.update(modle_type="PLKSRModel"), "modle_type: unknown key (did you mean 'model_type'?)"),
        (lambda o: o["train"].update(total_iters=5), "train.total_iters: unknown key (did you mean 'total_iter'?)"),
        (lambda o: o["train"]["pixel_opt"].update(weight=1), "train.pixel_opt.weight: unknown key"),
        (lambda o: o["train"]["optim_g"].update(beta=[0.9]), "train.optim_g.beta: unknown key (did you mean 'betas'?)"),
        (lambda o: o["train"]["optim_g"].update(type="Adamm"), "train.optim_g.type: 'Adamm' is not an optimizer"),
        (lambda o: o["train"]["scheduler"].update(milestone=[1]), "train.scheduler.milestone: unknown key"),
        (lambda o: o["datasets"]["train"].update(gt_sise=8), "datasets.train.gt_sise: unknown key"),
        (
            lambda o: o["datasets"]["train"].update(type="NoSuchDataset"),
            "datasets.train.type: 'NoSuchDataset' is not registered",
        ),
        (lambda o: o.update(scale=3), "network_g.upscaling_factor: 2 differs from scale: 3"),
        (lambda o: o.update(amp_dtype="fp8"), "amp_dtype: 'fp8' is not one of auto, fp16, bf16"),
        (lambda o: o["logger"].update(print_freq="often"), "logger.print_freq: expected int, got 'often'"),
        (
            lambda o: o["network_g"].update(type="PLKSRR"),
            "network_g.type: 'PLKSRR' is not registered in BasicSR (did you mean 'PLKSR'?)",
        ),
        (lambda o: o.pop("model_type"), "model_type: missing"),
        (lambda o: o.update(val={"val_freq": 2, "tile": 4}), "val: tile: 4 must be an int >= 8"),
        (
            lambda o: o.update(val={"val_freq": 2, "tile": 64, "tile_overlap": 32}),
            "val: tile_overlap: 32 must be an int with 0 <= overlap < tile / 2 (32)",
        ),
        (
            lambda o: o.update(val={"val_freq": 2, "self_ensembel": True}),
            "val.self_ensembel: unknown key (did you mean 'self_ensemble'?)",
        ),
    ],
)
def test_mistakes_are_one_line_errors(tmp_path, data, mutate, expected: str) -> None:
    opt = train_options(data)
    mutate(opt)
    assert expected in _error(opt, tmp_path)


def test_missing_reference_file_is_named(tmp_path, data) -> None:
    opt = train_options(data)
    opt["val"] = {"val_freq": 2, "reference_file": "refs.yml"}
    assert "val.reference_file: 'refs.yml' does not exist" in _error(opt, tmp_path, check_paths=True)


def test_missing_data_folder_is_named(tmp_path, data) -> None:
    opt = train_options(data)
    opt["datasets"]["train"]["dataroot_lq"] = "datasets/nowhere/X2"
    message = _error(opt, tmp_path, check_paths=True)
    assert "datasets.train.dataroot_lq: 'datasets/nowhere/X2' does not exist" in message


def test_yaml_syntax_error_names_line(tmp_path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("name: x\nnetwork_g: {type: PLKSR\n")
    with pytest.raises(OptionsError, match=r"broken\.yml: invalid YAML \(line \d+\)"):
        read_yaml(str(path))


def test_missing_file(tmp_path) -> None:
    with pytest.raises(OptionsError, match="no such option file"):
        read_yaml(str(tmp_path / "nope.yml"))


def test_force_yml_overrides_parse_yaml_values(tmp_path, data) -> None:
    opt = train_options(data)
    apply_overrides(opt, ["train:total_iter=12", "train:optim_g:lr=5e-4", "name=renamed"], "x.yml")
    assert opt["train"]["total_iter"] == 12 and opt["train"]["optim_g"]["lr"] == 5e-4 and opt["name"] == "renamed"
    with pytest.raises(OptionsError, match="expected KEY:SUBKEY=VALUE"):
        apply_overrides(opt, ["train:total_iter"], "x.yml")
    with pytest.raises(OptionsError, match="nothing is not a mapping"):
        apply_overrides(opt, ["nothing:x=1"], "x.yml")


def test_load_options_completes_paths_like_basicsr(tmp_path, data) -> None:
    path = write_yaml(tmp_path / "ok.yml", train_options(data))
    opt = load_options(str(path), is_train=True, root=str(tmp_path), debug=True)
    assert opt["name"] == "debug_tiny"
    assert opt["path"]["experiments_root"] == str(tmp_path / "experiments" / "debug_tiny")
    assert opt["path"]["training_states"].endswith("debug_tiny/training_states")
    assert opt["datasets"]["train"]["phase"] == "train" and opt["datasets"]["train"]["scale"] == 2
    assert opt["dist"] is False and "rank" not in opt  # the pipelines start the process (start_process)


def test_load_options_has_no_side_effects_and_start_process_seeds(tmp_path, data) -> None:
    import torch

    from plksr_arch.training.process import start_process

    path = write_yaml(tmp_path / "ok.yml", train_options(data, manual_seed=7))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    opt = load_options(str(path), is_train=True, root=str(tmp_path))
    assert torch.equal(torch.rand(3), expected)  # no seeding
    assert not torch.distributed.is_initialized()
    start_process(opt)
    assert (opt["rank"], opt["world_size"]) == (0, 1)
    seeded = torch.rand(3)
    start_process(opt)
    assert torch.equal(torch.rand(3), seeded)  # manual_seed + rank


def test_official_style_file_falls_back_to_cpu_with_one_warning(tmp_path, data, caplog, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    opt = train_options(data, num_gpu=1, model_type="ESRModel", use_amp=True)
    opt["val"] = {
        "val_freq": 5000.0,
        "save_img": False,
        "pbar": False,  # keys as the official files write them
        "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": True, "better": "higher"}},
    }
    opt["dist_params"] = {"backend": "nccl", "port": 29500}
    opt["path"]["strict_load_g"] = False
    path = write_yaml(tmp_path / "official.yml", opt)
    with caplog.at_level(logging.WARNING, logger="plksr"):
        loaded = load_options(str(path), is_train=True, root=str(tmp_path))
    assert loaded["num_gpu"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "plksr"]
    assert warnings == ["num_gpu: 1 but CUDA is not available: running on the CPU"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_demo_recipe_validates_for_every_tier(precision: str) -> None:
    from plksr_arch.training.demo_pipeline import test_options, tiers, train_options

    data = dict.fromkeys(("train_gt", "train_lq", "test_gt", "test_lq"), "DATA")
    for tier in tiers():
        validate(train_options(data, 4, 100, tier, precision), "demo.yml", is_train=True, check_paths=False)
        validate(test_options(data, 4, "w.pth", tier), "demo.yml", is_train=False, check_paths=False)


def test_project_keys_are_declared_once_with_types_defaults_and_docs(tmp_path, data) -> None:
    """Every key PLKSRModel declares (its `option_keys`: top level, `val.*`, `train.*`) has a doc, validates at its
    default, and a value of another type is a one-line error naming the key and the declared types."""
    from dataclasses import fields

    from plksr_arch.training.models.plksr_model import ModelKeys, PLKSRModel, TestKeys

    val = make_pairs(tmp_path / "val", 1, 2)
    assert [kind.section for kind in PLKSRModel.option_keys] == ["", "val", "train"]
    for kind in PLKSRModel.option_keys:
        section = kind.section
        for f in fields(kind):
            assert f.metadata["doc"], f.name
            where = f"{section}.{f.name}" if section else f.name
            for value, valid in ((f.default, True), ([1, 2], False)):
                opt = train_options(data, val)
                (opt[section] if section else opt)[f.name] = value
                path = write_yaml(tmp_path / "o.yml", opt)
                if valid:
                    loaded = load_options(str(path), is_train=True, root=str(tmp_path), check_paths=False)
                    assert getattr(kind.read(loaded[section] if section else loaded), f.name) == f.default
                    continue
                with pytest.raises(OptionsError) as raised:
                    load_options(str(path), is_train=True, root=str(tmp_path), check_paths=False)
                assert str(raised.value).startswith(f"{path}: {where}: expected "), str(raised.value)
                assert str(raised.value).endswith(", got [1, 2]")
    assert TestKeys.read(None) == TestKeys() and TestKeys().tile_overlap == 16
    assert TestKeys.read({"tile": 64, "save_img": True}) == TestKeys(tile=64)  # BasicSR's own keys ignored
    assert ModelKeys.read({"use_amp": True, "name": "x"}).use_amp is True


def test_declared_types_come_from_the_annotations() -> None:
    """`OptionKeys` reads each key's YAML types from its annotation (a float also takes an int), so a type is written
    once; `type_name` writes them as errors and docs/options.md do."""
    from plksr_arch.training.basicsr_keys import DegradationKeys
    from plksr_arch.training.keys import NoneType, type_name
    from plksr_arch.training.models.plksr_model import TestKeys

    schema = TestKeys.schema()
    assert schema["tile"] == (int, NoneType) and schema["self_ensemble"] == (bool,)
    assert schema["reference_file"] == (str, NoneType)
    degradation = DegradationKeys.schema()
    assert degradation["gaussian_noise_prob"] == (int, float) and degradation["resize_prob"] == (list,)
    assert type_name(schema["tile"]) == "int or null"
    needed = {d.name for d in DegradationKeys.declared() if d.needed}
    assert "gt_size" in needed and "queue_size" not in needed and len(needed) == 16


@pytest.mark.parametrize("path", REAL_WORLD, ids=lambda p: p.name)
def test_real_world_files_write_out_real_esrgans_x4plus_recipe(path: Path) -> None:
    from importlib import resources

    recipe = yaml_load(resources.files("plksr_arch.resources").joinpath("realesrgan_x4plus.yml").read_text())
    opt = read_yaml(str(path))
    assert {k: opt[k] for k in recipe["model"]} == recipe["model"]
    train_ds = opt["datasets"]["train"]
    assert {k: train_ds[k] for k in recipe["dataset"]} == recipe["dataset"]
    assert train_ds["type"] == "RealESRGANDataset" and train_ds["batch_size_per_gpu"] == 12
    assert opt["datasets"]["val_1"]["type"] == "PairedImageDataset"  # validation on a paired set
    train, gan = opt["train"], opt["model_type"] == "RealESRGANModel"
    assert train["ema_decay"] == 0.999 and train["pixel_opt"]["type"] == "L1Loss"
    assert train["optim_g"]["lr"] == (1e-4 if gan else 2e-4)
    assert train["total_iter"] == train["scheduler"]["milestones"][0] == (400_000 if gan else 1_000_000)
    if gan:
        stage1 = path.name.replace("RealESRGAN", "RealESRNet").removesuffix(".yml")
        assert opt["path"]["pretrain_network_g"] == f"experiments/{stage1}/models/net_g_latest.pth"
        assert (opt["l1_gt_usm"], opt["percep_gt_usm"], opt["gan_gt_usm"]) == (True, True, False)
        assert opt["network_d"]["type"] == "UNetDiscriminatorSN" and train["optim_d"]["lr"] == 1e-4
        layers = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1, "conv4_4": 1, "conv5_4": 1}
        assert train["perceptual_opt"]["layer_weights"] == layers
        assert train["gan_opt"]["gan_type"] == "vanilla" and train["gan_opt"]["loss_weight"] == 0.1
    else:
        assert opt["gt_usm"] is True and opt["path"]["pretrain_network_g"] is None


def test_other_projects_type_names_are_read_as_ours_and_logged_once(tmp_path, caplog) -> None:
    """The official and BasicSR/Real-ESRGAN names of `names.FOREIGN_NAMES`, wherever an option file names a
    class, become ours in `load_options`; each mapping is logged once per process; other names stay."""
    import plksr_arch.training.options as options

    opt = {
        "model_type": "ESRModel",
        "datasets": {"train": {"type": "PairedImageDataset"}, "val_1": {"type": "PairedImageDataset"}},
        "train": {"pixel_opt": {"type": "L1Loss"}, "perceptual_opt": {"type": "PerceptualLoss"}},
    }
    options._adopted.clear()
    with caplog.at_level("INFO", logger="plksr"):
        adopt_foreign_names(opt, "x.yml")
        adopt_foreign_names({"model_type": "ESRModel"}, "y.yml")
    assert opt == {
        "model_type": "PLKSRModel",
        "datasets": {"train": {"type": "PLKSRPairedImageDataset"}, "val_1": {"type": "PLKSRPairedImageDataset"}},
        "train": {"pixel_opt": {"type": "L1Loss"}, "perceptual_opt": {"type": "PLKSRPerceptualLoss"}},
    }
    assert caplog.messages == [
        "x.yml: model_type: ESRModel is read as plksr-arch's PLKSRModel",
        "x.yml: datasets.train.type: PairedImageDataset is read as plksr-arch's PLKSRPairedImageDataset",
        "x.yml: train.perceptual_opt.type: PerceptualLoss is read as plksr-arch's PLKSRPerceptualLoss",
    ]
