"""load_model on every checkpoint layout, configuration detection from the tensors, refused files, load_into."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plksr_arch import PLKSR, PRESETS, RealPLKSR, load_model
from plksr_arch.weights.read import CheckpointError, detect_config, load_into, read_state_dict, read_torch_file
from plksr_arch.weights.write import save_weights

SMALL = {"dim": 16, "n_blocks": 2, "kernel_size": 7}


def _net(**kwargs) -> PLKSR:
    return PLKSR(**{**SMALL, **kwargs}).eval()


@pytest.mark.parametrize(
    "config",
    [
        {"upscaling_factor": 2},
        {"upscaling_factor": 3, "ccm_type": "CCM", "use_ea": False},
        {"upscaling_factor": 4, "ccm_type": "ICCM", "split_ratio": 0.5},
        {"upscaling_factor": 1, "lk_type": "RectSparsePLK", "kernel_size": 9},
        {"upscaling_factor": 2, "n_blocks": 3, "dim": 24, "kernel_size": 5, "split_ratio": 0.125 * 2},
    ],
)
def test_detect_config_round_trips(config: dict) -> None:
    net = _net(**config)
    detected = detect_config(net.state_dict())
    rebuilt = PLKSR(**detected)
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    expected = {**SMALL, "ccm_type": "DCCM", "lk_type": "PLK", "split_ratio": 0.25, "use_ea": True, **config}
    assert {k: detected[k] for k in expected} == expected


@pytest.mark.parametrize("name", ["PLKSR", "PLKSR-tiny"])
def test_released_presets_are_detected(name: str) -> None:
    state = PLKSR(**PRESETS[name], upscaling_factor=3).state_dict()
    config = detect_config(state)
    assert {k: config[k] for k in PRESETS[name]} == PRESETS[name] and config["upscaling_factor"] == 3


def test_load_model_reads_every_layout(tmp_path: Path) -> None:
    net = _net(upscaling_factor=2)
    other = _net(upscaling_factor=2)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        expected, other_out = net(x), other(x)
    state = net.state_dict()
    layouts = {
        "raw.pth": state,
        "params.pth": {"params": state},
        "ema.pth": {"params": other.state_dict(), "params_ema": state},  # EMA wins, as BasicSR's tests load it
        "ddp.pth": {"params": {f"module.{k}": v for k, v in state.items()}},
    }
    for file, data in layouts.items():
        torch.save(data, tmp_path / file)
    save_weights(net, str(tmp_path / "w.safetensors"))
    for file in [*layouts, "w.safetensors"]:
        model = load_model(str(tmp_path / file))
        assert not model.training
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected, msg=file)
    model = load_model(str(tmp_path / "ema.pth"), param_key="params")
    with torch.no_grad():
        torch.testing.assert_close(model(x), other_out)
    torch.testing.assert_close(load_model(state)(x).detach(), expected)


def test_load_model_refuses_pickled_objects_and_bad_weights(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    torch.save({"params": _net().state_dict(), "opt": Path("x")}, evil)
    with pytest.raises(CheckpointError, match=r"evil.pth: refused: .* \(it would call pathlib.PosixPath\); nothing"):
        load_model(str(evil))
    with pytest.raises(FileNotFoundError, match="nope.pth: no such weights file"):
        load_model(str(tmp_path / "nope.pth"))
    with pytest.raises(
        CheckpointError, match=r"state dict: not the weights of one of PLKSR, RealPLKSR \(recognised: none\)"
    ):
        load_model({"conv.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="missing 'feats.0.weight': not a PLKSR state dict"):
        load_model({"feats.1.channe_mixer.0.weight": torch.zeros(1)})
    state = _net().state_dict()
    state["feats.1.refine.weight"] = torch.zeros(3, 3, 1, 1)
    with pytest.raises(CheckpointError, match="weights do not fit PLKSR"):
        load_model(state)
    with pytest.raises(CheckpointError, match="no 'params' entry"):
        read_state_dict({"params_ema": _net().state_dict()}, param_key="params")


def test_sparse_plk_needs_its_dilations_but_loads_once_converted() -> None:
    net = _net(lk_type="SparsePLK", kernel_size=9, sparse_kernels=(3, 3), sparse_dilations=(1, 4))
    with pytest.raises(CheckpointError, match="pass sparse_dilations"):
        load_model(net.state_dict())
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        expected = net(x)
        loaded = load_model(net.state_dict(), sparse_dilations=(1, 4), kernel_size=9)
        torch.testing.assert_close(loaded(x), expected, rtol=1e-4, atol=1e-5)
        converted = load_model(net.convert().state_dict())  # a converted SparsePLK is a PLK
        torch.testing.assert_close(converted(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_saved_hyperparameters_rebuild_what_the_tensors_cannot_tell(tmp_path: Path, suffix: str) -> None:
    net = _net(lk_type="SparsePLK", sparse_kernels=(3, 3), sparse_dilations=(1, 3), with_idt=True, kernel_size=5)
    x = torch.rand(1, 3, 12, 12)
    path = str(tmp_path / f"w{suffix}")
    save_weights(net, path)
    loaded = load_model(path, convert=False)  # no overrides needed: dilations and with_idt come from the file
    assert loaded.hyperparameters["sparse_dilations"] in ((1, 3), [1, 3]) and loaded.hyperparameters["with_idt"]
    torch.testing.assert_close(loaded(x), net(x))


def test_convert_keeps_the_hyperparameters_true() -> None:
    net = _net(lk_type="SparsePLK", sparse_kernels=(3, 3), sparse_dilations=(1, 3), with_idt=True, kernel_size=5)
    x = torch.rand(1, 3, 12, 12)
    expected = net(x)
    net.convert()
    assert net.hyperparameters["lk_type"] == "PLK" and net.hyperparameters["kernel_size"] == 7  # k_max = (3-1)*3+1
    assert net.hyperparameters["with_idt"] is False
    rebuilt = PLKSR(**net.hyperparameters).eval()
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    torch.testing.assert_close(rebuilt(x), expected, rtol=1e-4, atol=1e-5)


REAL_VARIANTS = [
    pytest.param({"upscaling_factor": 4}, id="GroupNorm-x4"),
    pytest.param({"upscaling_factor": 2, "layer_norm": True, "use_ea": False}, id="LayerNorm-x2"),
    pytest.param({"upscaling_factor": 3, "dysample": True}, id="DySample-x3"),
    pytest.param({"upscaling_factor": 4, "dysample": True, "layer_norm": True}, id="DySample-LayerNorm-x4"),
    pytest.param({"upscaling_factor": 1, "dysample": True}, id="DySample-x1"),
]


@pytest.mark.parametrize("config", REAL_VARIANTS)
def test_realplksr_is_told_from_plksr_and_its_options_read_from_the_tensors(config: dict) -> None:
    from plksr_arch.weights.read import detect_architecture

    net = RealPLKSR(**{**SMALL, **config}).eval()
    state = net.state_dict()
    assert detect_architecture(state) == "RealPLKSR" and detect_architecture(_net().state_dict()) == "PLKSR"
    detected = detect_config(state, architecture="RealPLKSR")
    expected = {**SMALL, "split_ratio": 0.25, "use_ea": True, "layer_norm": False, "dysample": False, **config}
    assert detected == expected
    x = torch.rand(1, 3, 10, 12)
    loaded = load_model(state)
    assert isinstance(loaded, RealPLKSR)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))


def test_neosr_traiNNer_and_prefixed_layouts(tmp_path: Path) -> None:
    """neosr's `params-ema`, `netG.` and `module.` prefixes, raw safetensors (traiNNer-redux's default)."""
    from safetensors.torch import save_file

    net = RealPLKSR(**SMALL, upscaling_factor=2).eval()
    other = RealPLKSR(**SMALL, upscaling_factor=2).eval()
    state = net.state_dict()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        expected = net(x)
    torch.save({"params": other.state_dict(), "params-ema": state}, tmp_path / "neosr.pth")
    torch.save({f"netG.{k}": v for k, v in state.items()}, tmp_path / "netg.pth")
    torch.save({"params_ema": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "ddp.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "raw.safetensors"))
    for file in ("neosr.pth", "netg.pth", "ddp.pth", "raw.safetensors"):
        with torch.no_grad():
            torch.testing.assert_close(load_model(str(tmp_path / file))(x), expected, msg=file)
    assert not torch.equal(load_model(str(tmp_path / "neosr.pth"), param_key="params")(x), expected)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_saved_files_name_their_architecture(tmp_path: Path, suffix: str) -> None:
    """What the tensors cannot tell (norm_groups) comes back from the file, with the architecture."""
    from plksr_arch.weights.read import read_checkpoint

    net = RealPLKSR(**SMALL, upscaling_factor=2, norm_groups=8).eval()
    path = str(tmp_path / f"w{suffix}")
    save_weights(net, path, half=True)
    checkpoint = read_checkpoint(path)
    assert checkpoint.architecture == "RealPLKSR" and checkpoint.hyperparameters["norm_groups"] == 8
    assert all(v.dtype == torch.float16 for k, v in checkpoint.state.items() if k != "to_img.init_pos")
    loaded = load_model(path)
    assert isinstance(loaded, RealPLKSR) and loaded.feats[1].norm.num_groups == 8


@pytest.mark.parametrize("network", [{"type": "PLKSR"}, {"type": "RealPLKSR", "dysample": True}])
def test_training_checkpoints_load_in_spandrel(tmp_path: Path, network: dict) -> None:
    """What `plksr train` writes (PLKSRModel.save_network, BasicSR's layout) loads in spandrel's ModelLoader, the
    loader of chaiNNer, and gives our outputs."""
    from basicsr.models import build_model

    from plksr_arch.training.options import load_options

    from ..conftest import make_pairs, train_options, write_yaml

    spandrel = pytest.importorskip("spandrel")
    opt = train_options(make_pairs(tmp_path / "data", 2, 2))
    opt["network_g"] = {**network, **SMALL, "upscaling_factor": 2}
    model = build_model(load_options(str(write_yaml(tmp_path / "o.yml", opt)), is_train=True, root=str(tmp_path)))
    path = Path(model.opt["path"]["models"]) / "net_g_1.pth"
    path.parent.mkdir(parents=True)
    model.save_network(model.net_g, "net_g", 1)
    descriptor = spandrel.ModelLoader().load_from_file(str(path))
    assert type(descriptor.model).__name__ == network["type"] and descriptor.scale == 2
    x = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(descriptor.model.eval()(x), load_model(str(path))(x), rtol=1e-5, atol=1e-5)


class _Payload:
    def __reduce__(self) -> tuple:
        return (print, ("payload ran",))


def test_read_torch_file_gives_one_line_reasons(tmp_path: Path, capsys) -> None:
    good = tmp_path / "good.pth"
    torch.save({"params": _net().state_dict()}, good)
    assert set(read_torch_file(str(good))) == {"params"}
    evil = tmp_path / "evil.pth"
    torch.save({"x": _Payload()}, evil)
    with pytest.raises(CheckpointError, match=r"evil.pth: refused: .*\(it would call print\); nothing"):
        read_torch_file(str(evil))
    assert "payload ran" not in capsys.readouterr().out
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:1000])
    cut_file = r"cut.pth: truncated or corrupt training state file \(1,000 bytes, an incomplete zip archive"
    with pytest.raises(CheckpointError, match=cut_file):
        read_torch_file(str(cut), "training state")
    text = tmp_path / "text.pth"
    text.write_text("params: 1\n")
    with pytest.raises(CheckpointError, match=r"text.pth: not a PyTorch weights file \(it starts with b'para'\)"):
        read_torch_file(str(text))
    with pytest.raises(FileNotFoundError, match="nope.state: no such training state file"):
        read_torch_file(str(tmp_path / "nope.state"), "training state")


def test_load_into_names_the_first_mismatch_or_skips_it_when_not_strict(tmp_path: Path, caplog) -> None:
    x4 = tmp_path / "x4.pth"
    torch.save({"params": _net(upscaling_factor=4).state_dict()}, x4)
    net = _net(upscaling_factor=2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(CheckpointError) as raised:
        load_into(net, str(x4))
    assert str(raised.value) == (
        f"{x4}: weights do not fit PLKSR: feats.3.weight is [48, 16, 3, 3] in the file, [12, 16, 3, 3] in the "
        "network; the file holds a PLKSR x4 (dim 16, 2 blocks)"
    )
    with caplog.at_level("WARNING", logger="plksr"):
        load_into(net, str(x4), strict=False)
    assert "not strict: 2 key(s) of PLKSR skipped, another shape: feats.3.weight, feats.3.bias" in caplog.text
    loaded = torch.load(x4, weights_only=True)["params"]
    assert torch.equal(net.state_dict()["feats.0.weight"], loaded["feats.0.weight"])
    assert torch.equal(net.state_dict()["feats.3.weight"], before["feats.3.weight"])
    ema = tmp_path / "ema.pth"
    torch.save({"params": _net(upscaling_factor=2).state_dict()}, ema)
    with caplog.at_level("INFO", logger="plksr"):
        load_into(net, str(ema), param_key="params_ema")  # BasicSR's fallback to 'params', logged
    assert "no 'params_ema' entry: loading 'params'" in caplog.text


def test_pretrained_weights_whose_stored_arguments_disagree_are_refused(tmp_path: Path) -> None:
    """With an option file, the network is the option file's; a file that stores other arguments is a one-line
    error naming the first that differs. Interchangeable arguments (training dropout) and files without stored
    arguments load."""
    from plksr_arch.weights.write import network_arguments

    trained = RealPLKSR(**SMALL, upscaling_factor=2, norm_groups=8, dropout=0.1)
    save_weights(trained, str(tmp_path / "g8.pth"))
    net = RealPLKSR(**SMALL, upscaling_factor=2)
    with pytest.raises(CheckpointError) as raised:
        load_into(net, str(tmp_path / "g8.pth"), arguments=network_arguments(net))
    assert str(raised.value) == (
        f"{tmp_path / 'g8.pth'}: was saved from a RealPLKSR with norm_groups=8, but the network built from the "
        "options has norm_groups=4: set norm_groups: 8 in its options (or load weights of that network)"
    )
    same = RealPLKSR(**SMALL, upscaling_factor=2, norm_groups=8)  # dropout 0: the same function at inference
    load_into(same, str(tmp_path / "g8.pth"), arguments=network_arguments(same))
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in same.state_dict().items())
    plksr = _net(upscaling_factor=2)
    with pytest.raises(CheckpointError, match=r"stores the weights of a RealPLKSR, but the network .* is a PLKSR$"):
        load_into(plksr, str(tmp_path / "g8.pth"), arguments=network_arguments(plksr))
    torch.save({"params": trained.state_dict()}, tmp_path / "bare.pth")  # nothing stored: nothing to compare
    load_into(net, str(tmp_path / "bare.pth"), arguments=network_arguments(net))


def test_files_without_stored_arguments_warn_about_what_the_tensors_cannot_show(tmp_path: Path, caplog) -> None:
    """One warning line per undetectable argument, naming the override; an override silences it and unknown or
    invalid overrides are one-line errors."""
    path = tmp_path / "official.pth"
    torch.save({"params": RealPLKSR(**SMALL, upscaling_factor=2, norm_groups=8).state_dict()}, path)
    with caplog.at_level("WARNING", logger="plksr"):
        assert load_model(str(path)).feats[1].norm.num_groups == 4
    assert caplog.messages == [
        f"{path}: stores no constructor arguments and its weights cannot show norm_groups: norm_groups=4 assumed; "
        "if it was trained with another value, pass --arch-opt norm_groups=VALUE (norm_groups=... in Python)"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="plksr"):
        assert load_model(str(path), norm_groups=8).feats[1].norm.num_groups == 8
    assert caplog.messages == []
    with pytest.raises(CheckpointError, match=r"official\.pth: RealPLKSR has no argument 'norm_group' \(its arg"):
        load_model(str(path), norm_group=8)
    with pytest.raises(CheckpointError, match=r"official\.pth: RealPLKSR: norm_groups=5 is invalid"):
        load_model(str(path), norm_groups=5)
    torch.save({"params": _net(upscaling_factor=2, with_idt=True).state_dict()}, path)
    with caplog.at_level("WARNING", logger="plksr"):
        load_model(str(path))
    assert "cannot show with_idt: with_idt=False assumed" in caplog.text


def test_write_weights_stores_every_weight_set_with_the_arguments(tmp_path: Path) -> None:
    """The one writer: BasicSR's layout plus the registry name and complete constructor arguments; BasicSR's own
    `load_network` reads the result as before; a safetensors file holds one set."""
    from basicsr.models.base_model import BaseModel

    from plksr_arch.weights.write import network_arguments, write_weights

    net, ema = _net(upscaling_factor=3), _net(upscaling_factor=3)
    write_weights(
        str(tmp_path / "w.pth"), {"params": net.state_dict(), "params_ema": ema.state_dict()}, network_arguments(net)
    )
    saved = torch.load(tmp_path / "w.pth", weights_only=True)
    assert set(saved) == {"params", "params_ema", "architecture", "hyperparameters"}
    assert saved["architecture"] == "PLKSR" and saved["hyperparameters"] == net.hyperparameters
    model = BaseModel.__new__(BaseModel)
    model.opt = {"dist": False, "num_gpu": 0}
    loaded = _net(upscaling_factor=3)
    model.load_network(loaded, str(tmp_path / "w.pth"), param_key="params_ema")
    assert all(torch.equal(v, ema.state_dict()[k]) for k, v in loaded.state_dict().items())
    with pytest.raises(
        CheckpointError, match=r"w\.safetensors: a \.safetensors file holds one weight set, not params, "
    ):
        write_weights(str(tmp_path / "w.safetensors"), {"params": {}, "params_ema": {}}, None)


def test_network_arguments_of_a_foreign_network_come_from_its_spec() -> None:
    from basicsr.archs.rrdbnet_arch import RRDBNet

    from plksr_arch.weights.write import network_arguments

    spec = {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1}
    net = RRDBNet(**{k: v for k, v in spec.items() if k != "type"})
    assert network_arguments(net, spec) == (
        "RRDBNet",
        {"num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 32},
    )
    assert network_arguments(net) is None
