"""The runtime policy: one auto rule for every machine class (AVX2-only, AVX512, AVX512-BF16, AMX, CUDA), used by
`Upscaler`, PLKSRModel training and validation, `plksr bench` and `plksr demo`; the CPU probe and its override."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import yaml

from plksr_arch.runtime import device as runtime
from plksr_arch.runtime.device import amp_precision, cpu_isa, resolve_precision

from ..conftest import TINY_NET, make_pairs, train_options, write_yaml

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
# CPU class -> what `auto` runs in there: bf16 only where oneDNN has native bf16.
AUTO_ON_CPU = {"avx2": "fp32", "avx512": "fp32", "avx512_bf16": "bf16", "amx": "bf16", "other": "fp32"}


@pytest.fixture(autouse=True)
def _fresh_messages(monkeypatch) -> None:
    monkeypatch.setattr(runtime, "_said", set())


@pytest.fixture(params=sorted(AUTO_ON_CPU))
def isa(request, monkeypatch) -> str:
    monkeypatch.setenv(runtime.ISA_ENV, request.param)
    return request.param


def test_probe_agrees_with_the_cpu_flags() -> None:
    probed = runtime._probe_cpu_isa()
    assert probed in runtime.CPU_ISAS
    flags = set()
    if Path("/proc/cpuinfo").exists():
        line = next((li for li in Path("/proc/cpuinfo").read_text().splitlines() if li.startswith("flags")), "")
        flags = set(line.split(":", 1)[-1].split())
    if flags:
        assert (probed in runtime.NATIVE_BF16_ISAS) == bool({"avx512_bf16", "amx_bf16"} & flags)
        assert (probed == "avx2") == ("avx2" in flags and "avx512f" not in flags)


def test_override_is_checked(monkeypatch) -> None:
    monkeypatch.setenv(runtime.ISA_ENV, "avx1024")
    with pytest.raises(ValueError, match=r"PLKSR_CPU_ISA='avx1024' is not one of amx, avx512_bf16"):
        cpu_isa()


def test_auto_rule_for_every_machine_class(isa: str, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="plksr"):
        assert resolve_precision("auto", CPU) == AUTO_ON_CPU[isa]
        assert resolve_precision("auto", CPU) == AUTO_ON_CPU[isa]
        assert resolve_precision("auto", CUDA) == "fp16"  # the paper's setting, whatever the host CPU
    said = [r.getMessage() for r in caplog.records]
    if AUTO_ON_CPU[isa] == "fp32":
        assert said == [f"precision auto: fp32 on this cpu ({isa}, no native bf16)"]  # said once
    else:
        assert said == []


def test_explicit_choices(isa: str, caplog) -> None:
    assert resolve_precision("fp32", CPU) == "fp32"
    with caplog.at_level(logging.WARNING, logger="plksr"):
        assert resolve_precision("bf16", CPU) == "bf16"  # honoured everywhere...
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == (AUTO_ON_CPU[isa] == "fp32")  # ...with a warning where it is emulated
    assert all("emulated here and slower than fp32" in w for w in warned)
    with pytest.raises(ValueError, match="fp16 is slow and unsafe on the CPU"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="precision: 'fp64' is not one of auto, fp32, fp16, bf16"):
        resolve_precision("fp64", CPU)


def test_option_file_amp_dtype(isa: str) -> None:
    # `amp_dtype: fp16` (the official files, for GPUs) and `auto` follow the auto rule on a CPU; bf16 is honoured.
    assert amp_precision("fp16", CPU) == AUTO_ON_CPU[isa]
    assert amp_precision("auto", CPU) == AUTO_ON_CPU[isa]
    assert amp_precision("bf16", CPU) == "bf16"
    assert amp_precision("fp16", CUDA) == amp_precision("auto", CUDA) == "fp16"
    with pytest.raises(ValueError, match="amp_dtype: 'fp8' is not one of auto, fp16, bf16"):
        amp_precision("fp8", CPU)


def test_cuda_bf16_needs_support(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Old GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ValueError, match=r"bf16 is not supported by cuda \(Old GPU\); use fp16 or fp32"):
        resolve_precision("bf16", CUDA)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("bf16", CUDA) == "bf16"


def test_model_training_and_validation_follow_the_rule(isa: str, tmp_path) -> None:
    from basicsr.models import build_model

    from plksr_arch.training.options import load_options

    val = make_pairs(tmp_path / "val", 1, 2)
    opt = train_options(make_pairs(tmp_path / "data", 2, 2), val=val, use_amp=True, amp_dtype="fp16")
    opt["val"]["use_amp"] = True
    model = build_model(load_options(str(write_yaml(tmp_path / "o.yml", opt)), is_train=True, root=str(tmp_path)))
    expected = runtime.autocast_dtype(AUTO_ON_CPU[isa])
    assert model.amp_dtype == expected
    assert model.use_amp == model.val_amp == (expected is not None)
    assert not model.scalers[0].is_enabled()  # no grad scaler without fp16 on CUDA
    seen = []
    model.net_g.feats[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    model.feed_data({"lq": torch.rand(2, 3, 8, 8), "gt": torch.rand(2, 3, 16, 16)})
    model.optimize_parameters(1)
    model.test()
    assert seen == [expected or torch.float32] * 2  # the first convolution ran in that dtype, training and testing


def test_upscaler_and_bench_follow_the_rule(isa: str) -> None:
    from plksr_arch import PLKSR, Upscaler
    from plksr_arch.bench.protocol import modes_for

    net = PLKSR(**{k: v for k, v in TINY_NET.items() if k != "type"}, upscaling_factor=2)
    up = Upscaler(net, "cpu", "auto")
    assert up.precision == AUTO_ON_CPU[isa]
    assert up.memory_format == torch.channels_last  # every precision on a CPU
    assert modes_for(CPU) == (["fp32", "bf16"] if AUTO_ON_CPU[isa] == "bf16" else ["fp32"])
    assert modes_for(CUDA) == ["fp16"]


def test_demo_plan_follows_the_rule(isa: str, monkeypatch, tmp_path) -> None:
    from plksr_arch.training import demo_pipeline as demo

    measured = []
    folders = ("train_gt", "train_lq", "test_gt", "test_lq")
    monkeypatch.setattr(demo, "build_dataset", lambda root, scale: dict.fromkeys(folders, root))
    monkeypatch.setattr(demo, "measure_iters_per_second", lambda opt, device, precision: measured.append(opt) or 1e6)

    class Stop(Exception):
        pass

    def stop(path: str, root: str) -> str:
        raise Stop(path)

    monkeypatch.setattr("plksr_arch.training.train_pipeline.run", stop)
    with pytest.raises(Stop) as stopped:
        demo.run_demo(str(tmp_path), scale=4, minutes=1)
    written = yaml.safe_load(Path(str(stopped.value)).read_text())
    low = AUTO_ON_CPU[isa] == "bf16"
    for opt in [*measured, written]:
        assert opt["use_amp"] == opt["channels_last"] == low
        assert opt.get("amp_dtype") == ("bf16" if low else None)
