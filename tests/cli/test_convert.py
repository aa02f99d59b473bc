"""`plksr convert`: .pth <-> .safetensors with the architecture stored; EMA choice; fp16; one-line errors."""

from __future__ import annotations

from pathlib import Path

import torch

from plksr_arch import PLKSR, RealPLKSR, load_model


def test_convert_round_trip_stores_architecture_and_picks_weights(tmp_path: Path, capsys, caplog) -> None:
    from plksr_arch.cli import main
    from plksr_arch.weights.read import read_checkpoint

    ema = RealPLKSR(dim=16, n_blocks=2, kernel_size=7, upscaling_factor=2).eval()
    plain = RealPLKSR(dim=16, n_blocks=2, kernel_size=7, upscaling_factor=2).eval()
    torch.save({"params": plain.state_dict(), "params-ema": ema.state_dict()}, tmp_path / "neosr.pth")
    x = torch.rand(1, 3, 9, 9)
    assert main(["convert", str(tmp_path / "neosr.pth"), str(tmp_path / "a.safetensors")]) == 0
    out = capsys.readouterr().out
    assert (
        f"{tmp_path / 'neosr.pth'}: stores no constructor arguments and its weights cannot show norm_groups: "
        "norm_groups=4 assumed; if it was trained with another value, pass --arch-opt norm_groups=VALUE "
        "(norm_groups=... in Python)"
    ) in caplog.messages
    assert "a.safetensors: RealPLKSR(dim=16, n_blocks=2, upscaling_factor=2" in out
    assert read_checkpoint(str(tmp_path / "a.safetensors")).architecture == "RealPLKSR"
    with torch.no_grad():
        torch.testing.assert_close(load_model(str(tmp_path / "a.safetensors"))(x), ema(x))
    assert main(["convert", str(tmp_path / "neosr.pth"), str(tmp_path / "p.pth"), "--no-ema", "--half"]) == 0
    half = read_checkpoint(str(tmp_path / "p.pth"))
    assert half.state["feats.0.weight"].dtype == torch.float16
    with torch.no_grad():
        torch.testing.assert_close(load_model(str(tmp_path / "p.pth"))(x), plain(x), rtol=1e-2, atol=1e-2)
    net = PLKSR(dim=16, n_blocks=2, kernel_size=7, upscaling_factor=3)
    torch.save(net.state_dict(), tmp_path / "raw.pth")
    assert main(["convert", str(tmp_path / "raw.pth"), str(tmp_path / "raw.pth.safetensors")]) == 0
    assert read_checkpoint(str(tmp_path / "raw.pth.safetensors")).hyperparameters["upscaling_factor"] == 3


def test_convert_errors_are_one_line(tmp_path: Path, capsys) -> None:
    from plksr_arch.cli import main

    torch.save(PLKSR(dim=16, n_blocks=1, kernel_size=7).state_dict(), tmp_path / "raw.pth")
    assert main(["convert", str(tmp_path / "raw.pth"), str(tmp_path / "o.safetensors"), "--ema"]) == 2
    assert "raw.pth: no params_ema or params-ema entry (weight sets: none: raw weights)" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "raw.pth"), str(tmp_path / "o.onnx")]) == 2
    assert "o.onnx: the output must end in .pth, .pt or .safetensors" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "none.pth"), str(tmp_path / "o.pth")]) == 2
