"""Faults in weights and training states: truncated files, weights of another scale or architecture, pickle payloads
on every load path (refused unread: the payload would create MARKER), and a safetensors file with a broken header."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ..conftest import run_python, train_options, write_yaml
from .harness import MARKER, Payload, fault, options_for_test, payload_weights, tiny_weights

pytestmark = pytest.mark.slow

REFUSED = "refused: it pickles Python objects besides tensors (it would call posix.system); nothing in it was run"


def _infer(weights: Path, data, named: str) -> None:
    """`plksr infer WEIGHTS` on the validation LQs: refused with one line naming `named`, the weights untouched."""
    args = ("infer", str(weights), str(data["val"][1]), "-o", "out")
    fault(*args, cwd=weights.parent, names=[named], kept=[weights])


def _train_yml(tmp_path: Path, data, **paths: Path) -> str:
    """`train.yml`: the tiny training options with `path.<key>` set to each file of `paths`."""
    opt = train_options(data["train"])
    opt["path"].update({key: str(file) for key, file in paths.items()})
    return str(write_yaml(tmp_path / "train.yml", opt))


def _truncated(path: Path) -> Path:
    content = tiny_weights(path).read_bytes()
    path.write_bytes(content[: len(content) // 2])
    return path


def test_truncated_weights_to_infer(tmp_path: Path, data) -> None:
    weights = _truncated(tmp_path / "w.pth")
    _infer(weights, data, f"{weights}: truncated or corrupt weights file (")


def test_truncated_pretrained_network(tmp_path: Path, data) -> None:
    weights = _truncated(tmp_path / "w.pth")
    path = _train_yml(tmp_path, data, pretrain_network_g=weights)
    fault("train", "-opt", path, cwd=tmp_path, names=[f"{weights}: truncated or corrupt weights file ("])


def test_weights_of_another_scale_name_the_first_mismatching_key(tmp_path: Path, data) -> None:
    weights = tiny_weights(tmp_path / "x4.pth", scale=4)
    path = write_yaml(tmp_path / "test.yml", options_for_test(data["val"], weights))
    fault(
        "test",
        "-opt",
        str(path),
        cwd=tmp_path,
        names=[
            f"{weights}: weights do not fit PLKSR: feats.3.weight is [48, 16, 3, 3] in the file, [12, 16, 3, 3] in "
            "the network; the file holds a PLKSR x4 (dim 16, 2 blocks)"
        ],
        kept=[weights],
    )


def test_weights_of_another_architecture(tmp_path: Path, data) -> None:
    weights = tiny_weights(tmp_path / "real.pth", architecture="RealPLKSR")
    fault(
        "train",
        "-opt",
        _train_yml(tmp_path, data, pretrain_network_g=weights),
        cwd=tmp_path,
        names=[f"{weights}: weights do not fit PLKSR: ", " missing (first ", "; the file holds a RealPLKSR x2"],
        kept=[weights],
    )


def _training_state(path: Path, folder: Path) -> Path:
    """A training state as `plksr train` writes it, plus a payload."""
    torch.save({"epoch": 0, "iter": 4, "optimizers": [], "schedulers": [], "payload": Payload(folder)}, path)
    return path


def _pretrained(tmp_path: Path, data) -> tuple[list[str], Path]:
    evil = payload_weights(tmp_path / "evil.pth", tmp_path)
    return ["train", "-opt", _train_yml(tmp_path, data, pretrain_network_g=evil)], evil


def _tested(tmp_path: Path, data) -> tuple[list[str], Path]:
    evil = payload_weights(tmp_path / "evil.pth", tmp_path)
    return ["test", "-opt", str(write_yaml(tmp_path / "test.yml", options_for_test(data["val"], evil)))], evil


def _resumed(tmp_path: Path, data) -> tuple[list[str], Path]:
    evil = _training_state(tmp_path / "evil.state", tmp_path)
    return ["train", "-opt", _train_yml(tmp_path, data, resume_state=evil)], evil


def _auto_resumed(tmp_path: Path, data) -> tuple[list[str], Path]:
    exp = tmp_path / "experiments" / "tiny"
    (exp / "training_states").mkdir(parents=True)
    (exp / "models").mkdir()
    tiny_weights(exp / "models" / "net_g_4.pth")
    evil = _training_state(exp / "training_states" / "4.state", tmp_path)
    return ["train", "-opt", _train_yml(tmp_path, data), "--auto_resume"], evil


def _inferred(tmp_path: Path, data) -> tuple[list[str], Path]:
    evil = payload_weights(tmp_path / "evil.pth", tmp_path)
    return ["infer", str(evil), str(data["val"][1]), "-o", "out"], evil


def _converted(tmp_path: Path, data) -> tuple[list[str], Path]:
    evil = payload_weights(tmp_path / "evil.pth", tmp_path)
    return ["convert", str(evil), "w.safetensors"], evil


def _exported(tmp_path: Path, data) -> tuple[list[str], Path]:
    evil = payload_weights(tmp_path / "evil.pth", tmp_path)
    return ["export", str(evil), "-o", "w.onnx"], evil


LOAD_PATHS = {
    "pretrained_network": _pretrained,
    "test_weights": _tested,
    "resume_state": _resumed,
    "auto_resume": _auto_resumed,
    "infer": _inferred,
    "convert": _converted,
    "export": _exported,
}


@pytest.mark.parametrize("load_path", sorted(LOAD_PATHS))
def test_pickle_payload_is_refused_unread(load_path: str, tmp_path: Path, data) -> None:
    args, evil = LOAD_PATHS[load_path](tmp_path, data)
    fault(*args, cwd=tmp_path, names=[f"{evil}: {REFUSED}"], kept=[evil])
    assert not list(tmp_path.glob("w.*"))


def test_pickle_payload_is_refused_by_load_model(tmp_path: Path) -> None:
    evil = payload_weights(tmp_path / "evil.pth", tmp_path)
    code = (
        "from plksr_arch import load_model\nfrom plksr_arch.weights.read import CheckpointError\n"
        f"try:\n    load_model({str(evil)!r})\nexcept CheckpointError as err:\n    print(err)\n"
    )
    proc = run_python(code, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"{evil}: {REFUSED}", proc.stdout + proc.stderr
    assert not (tmp_path / MARKER).exists()


def test_safetensors_with_a_broken_header(tmp_path: Path, data) -> None:
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json header}")
    _infer(weights, data, f"{weights}: not a valid safetensors file (Error while deserializing header")


def test_a_file_that_is_not_weights(tmp_path: Path) -> None:
    weights = tmp_path / "notes.pth"
    weights.write_text("name: not weights\n")
    fault("convert", str(weights), "w.safetensors", cwd=tmp_path, names=[f"{weights}: not a PyTorch weights file"])
