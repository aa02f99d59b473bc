"""The paper's efficiency protocol: restore an HD (1280x720) output, warm up, take the median of N timed runs and
the peak memory, for PLKSR, PLKSR-tiny and the peers BasicSR ships (SwinIR-light, EDSR-baseline), each in its
fastest mode, plus the machine's measured limit (`measure.conv_limit_tflops`, per precision) and each model's
effective rate (its nominal FLOPs over its latency) as a share of it. PLKSR also runs the reference way (fp32, NCHW,
eager) and, with `compile`, through `torch.compile` (its first call, compilation included, is reported).

Timing: CUDA events on GPUs, `perf_counter` on CPUs. Peak memory: CUDA `max_memory_allocated` above the model's
weights; on CPUs the peak resident set size above the level before the run, sampled every millisecond.
FLOPs are counted by `torch.utils.flop_counter` (convolutions, matmuls, attention), 2 per multiply-add.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from plksr_arch.errors import UserError
from plksr_arch.runtime.device import autocast_dtype, cpu_has_native_bf16, cpu_isa, inference_memory_format
from plksr_arch.runtime.measure import (
    LIMIT_CONV,
    conv_limit_tflops,
    count_flops,
    cuda_peak_mib,
    rss_peak_mib,
    time_runs,
)

HD = (720, 1280)
ONNXRUNTIME = "onnxruntime"  # the mode of a run through onnxruntime's CPU provider (fp32 ONNX export)
# Variants of a PLKSR run besides `Upscaler`'s default: the reference (fp32, NCHW, eager, direct PLKC) and compiled.
REFERENCE, COMPILED = "reference", "compiled"


@dataclass(frozen=True)
class BenchConfig:
    """How `bench` measures: the device, the scale (input = HD / scale), warm-up and timed runs, the limit of each
    mode (TFLOP/s, `conv_limit_tflops`) that effective rates are shared against."""

    device: torch.device
    scale: int
    warmup: int
    runs: int
    limit: dict[str, float]


@dataclass
class Result:
    """One run of a model in one mode: `model` is its id (a key of `peers`), `label` what tables show (the reference
    run of PLKSR is `PLKSR` labelled as such); median latency (ms), peak memory (MiB), GFLOPs per image, params,
    the effective rate (nominal FLOPs / latency, TFLOP/s) and its share of the mode's limit; for a compiled run, the
    seconds of its first call (compilation and one pass)."""

    model: str
    label: str
    mode: str
    latency_ms: float
    peak_mib: float
    gflops: float
    params: int
    tflops: float = 0.0
    limit_share: float = 0.0
    first_call_s: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class WindowPadded(nn.Module):
    """Pad the input (reflect) to a multiple of `multiple` and crop the output: how SwinIR's own test code runs
    window attention on sizes like 180x320 (BasicSR's SwinIR has no padding of its own)."""

    def __init__(self, net: nn.Module, multiple: int, scale: int) -> None:
        super().__init__()
        self.net, self.multiple, self.scale = net, multiple, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        y = self.net(F.pad(x, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else x)
        return y[..., : h * self.scale, : w * self.scale]


# The lightweight layout SwinIR-light introduced and SRFormer-light keeps (with its own window size).
LIGHT_SWIN = {
    "img_size": 64,
    "img_range": 1.0,
    "depths": [6, 6, 6, 6],
    "embed_dim": 60,
    "num_heads": [6, 6, 6, 6],
    "mlp_ratio": 2,
    "upsampler": "pixelshuffledirect",
}

# Peers built from spandrel (chaiNNer's model library, the `[bench]` extra), in the configurations of the methods'
# papers, as the PLKSR paper compares them; module of each: spandrel's (or spandrel_extra_arches') architecture.
SPANDREL_PEERS = {
    "OmniSR": "spandrel",
    "CRAFT": "spandrel",
    "SRFormer-light": "spandrel_extra_arches",
    "DITN-real": "spandrel",
    "SAFMN": "spandrel",
}


def _spandrel_peers(scale: int) -> dict[str, Callable[[], nn.Module]]:
    """The paper configurations: OmniSR (64 channels, 5 OSAGs, window 8), CRAFT (its default), SRFormer-light
    (SwinIR-light's layout, window 16), DITN-real (the DITN repository's DITN_Real, as its test script builds it)
    and SAFMN (36 channels, 8 blocks)."""

    def omnisr() -> nn.Module:
        from spandrel.architectures.OmniSR import OmniSR

        return OmniSR(num_feat=64, block_num=1, pe=True, window_size=8, res_num=5, up_scale=scale, bias=True)

    def craft() -> nn.Module:
        from spandrel.architectures.CRAFT import CRAFT

        return CRAFT(upscale=scale)

    def srformer_light() -> nn.Module:
        from spandrel_extra_arches.architectures.SRFormer import SRFormer

        return SRFormer(upscale=scale, window_size=16, **LIGHT_SWIN)

    def ditn_real() -> nn.Module:
        from spandrel.architectures.DITN import DITN

        return DITN(upscale=scale)

    def safmn() -> nn.Module:
        from spandrel.architectures.SAFMN import SAFMN

        return SAFMN(dim=36, n_blocks=8, ffn_scale=2.0, upscaling_factor=scale)

    return {"OmniSR": omnisr, "CRAFT": craft, "SRFormer-light": srformer_light, "DITN-real": ditn_real, "SAFMN": safmn}


def missing_packages(names: list[str]) -> dict[str, str]:
    """Models of `names` whose package is not installed: name -> package."""
    import importlib.util

    packages = {n: SPANDREL_PEERS[n] for n in names if n in SPANDREL_PEERS}
    return {n: p for n, p in packages.items() if importlib.util.find_spec(p) is None}


def peers(scale: int) -> dict[str, Callable[[], nn.Module]]:
    """Constructors of the models to time (random weights): every preset of `archs.registry` (ours), BasicSR's EDSR
    and SwinIR, and the `SPANDREL_PEERS` (which need the `[bench]` extra when called): name -> factory."""
    from basicsr.archs.edsr_arch import EDSR
    from basicsr.archs.swinir_arch import SwinIR

    from plksr_arch.archs.registry import presets

    return {
        **{label: functools.partial(spec.build, label, scale) for label, spec in presets().items()},
        # SwinIR-light: the configuration of the SwinIR paper's lightweight model.
        "SwinIR-light": lambda: WindowPadded(
            SwinIR(upscale=scale, window_size=8, **LIGHT_SWIN),
            8,
            scale,
        ),
        "EDSR-baseline": lambda: EDSR(3, 3, num_feat=64, num_block=16, upscale=scale, res_scale=1.0),
        # EDSR as the PLKSR paper lists it (Set5 x4 32.46 dB): the full model, 256 channels, 32 blocks.
        "EDSR": lambda: EDSR(3, 3, num_feat=256, num_block=32, upscale=scale, res_scale=0.1),
        **_spandrel_peers(scale),
    }


def modes_for(device: torch.device) -> list[str]:
    """Candidate modes: fp16 on CUDA (the paper's protocol), fp32 and native bf16 on CPUs."""
    if device.type == "cuda":
        return ["fp16"]
    return ["fp32"] + (["bf16"] if cpu_has_native_bf16() else [])


def runner(
    model: nn.Module, mode: str, device: torch.device, x: torch.Tensor, fmt: torch.memory_format
) -> Callable[[], torch.Tensor]:
    """A no-argument callable running `model` on `x` in `mode` (autocast for fp16/bf16) and memory format `fmt`."""
    dtype = autocast_dtype(mode)
    model = model.to(device, memory_format=fmt).eval()
    x = x.to(device, memory_format=fmt)

    def run() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            return model(x)

    return run


def _cpu_peak_child(name: str, mode: str, scale: int, variant: str, size: tuple[int, int], queue) -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 3, *size)
    queue.put(rss_peak_mib(make_run(name, peers(scale)[name](), mode, torch.device("cpu"), x, variant)))


def onnxruntime_run(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """`model` exported to ONNX for `x`'s static shape (a temporary file) and run by onnxruntime's CPU provider."""
    import os
    import tempfile

    import onnxruntime as ort

    from plksr_arch.export.onnx_export import export_onnx

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.onnx")
        export_onnx(model, path, static=tuple(x.shape[-2:]))
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {"input": x.cpu().numpy()}
    return lambda: session.run(None, feed)


def cpu_peak_mib(name: str, mode: str, scale: int, variant: str = "") -> float:
    """Peak RSS increase of the first forward pass of `name` in `mode` (input `input_size(scale)`), in a fresh
    (spawned) process; scripts that call `bench` on a CPU need the `if __name__ == "__main__":` guard that spawning
    requires."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_cpu_peak_child, args=(name, mode, scale, variant, input_size(scale), queue))
    child.start()
    child.join(timeout=600)
    if child.exitcode != 0 or queue.empty():
        child.kill()
        raise RuntimeError(f"peak-memory probe of {name} ({mode}) failed: exit code {child.exitcode}")
    return queue.get()


def make_run(
    name: str, model: nn.Module, mode: str, device: torch.device, x: torch.Tensor, variant: str = ""
) -> Callable[[], object]:
    """The call to time: our models (`archs.registry`) through `Upscaler.forward` (low-precision body, fp32 skip,
    measured PLKC route; `variant` `compiled`: with `compile=True`; `reference`: plainly, NCHW), peers plainly under
    autocast in the mode's inference memory format, any model through onnxruntime (CPU, fp32) in mode `onnxruntime`.
    Plain runs move the model to their memory format."""
    from plksr_arch.inference.upscaler import Upscaler

    if mode == ONNXRUNTIME:
        return onnxruntime_run(model, x)
    if variant == REFERENCE:
        return runner(model, mode, device, x, torch.contiguous_format)
    if _ours(name):
        forward = Upscaler(model, device, mode, compile=variant == COMPILED).forward
        return lambda: forward(x)
    return runner(model, mode, device, x, inference_memory_format(mode, device))


def input_size(scale: int) -> tuple[int, int]:
    """LR input size whose x`scale` output is (about) HD, as in the paper: 180x320 for x4."""
    return round(HD[0] / scale), round(HD[1] / scale)


def _measure(
    config: BenchConfig, ids: tuple[str, str], mode: str, run: Callable[[], object], peak_mib: float, size: tuple
) -> Result:
    """Time `run` (`ids` = model id and label; `size` = its FLOPs per pass and parameter count)."""
    ms = time_runs(run, config.device, config.warmup, config.runs)
    flops, params = size
    tflops = flops / (ms / 1000) / 1e12
    limit = config.limit["fp32" if mode == ONNXRUNTIME else mode]
    return Result(*ids, mode, ms, peak_mib, flops / 1e9, params, tflops, tflops / limit)


def bench(
    names: list[str],
    device: torch.device,
    scale: int = 4,
    warmup: int = 2,
    runs: int = 10,
    log: Callable[[str], None] = print,
    backends: tuple[str, ...] = (),
    compile: bool = False,
) -> dict:
    """Benchmark `names` (keys of `peers`) at HD output; PLKSR also as the reference runs it (fp32, NCHW, eager).

    Each model runs once in every mode of `modes_for(device)` (after one warm-up) and is measured in its fastest.
    PLKSR's modes use `Upscaler`'s forward pass (low-precision body, fp32 global skip, measured PLKC route); with
    `compile` each PLKSR model also runs compiled in its best mode. CPU peak memory comes from a fresh process per
    run, so runs do not inherit each other's freed memory. `backends=("onnxruntime",)` adds
    a row per PLKSR model run by onnxruntime's CPU provider (fp32 ONNX export, static HD input).
    """
    factories = peers(scale)
    if ONNXRUNTIME in backends:
        if device.type != "cpu":
            raise UserError(f"--backend {ONNXRUNTIME}: measures onnxruntime's CPU provider; use --device cpu")
        from plksr_arch.export.onnx_export import ONNX_PACKAGES, require

        require(ONNX_PACKAGES, "export")
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise UserError(f"models: {', '.join(unknown)} unknown (known: {', '.join(factories)})")
    missing = missing_packages(names)
    if missing:
        needs = ", ".join(f"{n} needs {p}" for n, p in missing.items())
        raise UserError(f"models: {needs} (the [bench] extra: pip install spandrel spandrel_extra_arches)")
    torch.manual_seed(0)
    x = torch.rand(1, 3, *input_size(scale))
    modes = modes_for(device)
    limit = {mode: conv_limit_tflops(device, mode) for mode in dict.fromkeys([*modes, "fp32"])}  # fp32: reference
    log(f"limit ({limit_name()}): " + ", ".join(f"{m} {v:.3f} TFLOP/s" for m, v in limit.items()))
    config = BenchConfig(device, scale, warmup, runs, limit)
    results: list[Result] = []
    for name in names:
        model = factories[name]()
        size = count_flops(model, x), sum(p.numel() for p in model.parameters())  # on the CPU, before the move
        trial = {}
        for m in modes:
            try:
                trial[m] = time_runs(make_run(name, model, m, device, x), device, 1, 1)
            except (RuntimeError, NotImplementedError) as err:  # a peer without kernels for this precision
                log(f"{name}: {m} does not run ({str(err).splitlines()[0][:120]}); measuring the other modes")
        if not trial:
            raise RuntimeError(f"{name} runs in none of the modes {', '.join(modes)}")
        best = min(trial, key=trial.get)
        log(f"{name}: trial " + ", ".join(f"{m} {v:.1f} ms" for m, v in trial.items()) + f" -> {best}")

        def peak(mode: str, variant: str = "", name: str = name, model: nn.Module = model) -> float:
            if device.type == "cuda":
                return cuda_peak_mib(make_run(name, model, mode, device, x, variant), device)
            return cpu_peak_mib(name, mode, scale, variant)

        run = make_run(name, model, best, device, x)
        results.append(_measure(config, (name, name), best, run, peak(best), size))
        if name == "PLKSR":
            plain = make_run(name, copy.deepcopy(model), "fp32", device, x, REFERENCE)
            label = "PLKSR (reference: fp32, NCHW, eager)"
            results.append(_measure(config, (name, label), "fp32", plain, peak("fp32", REFERENCE), size))
        if compile and _ours(name):
            run = make_run(name, model, best, device, x, COMPILED)
            tick = time.perf_counter()
            run()
            first = time.perf_counter() - tick
            log(f"{name}: torch.compile, first call {first:.1f} s")
            result = _measure(config, (name, f"{name} (torch.compile)"), best, run, peak(best, COMPILED), size)
            result.first_call_s = first
            results.append(result)
        if ONNXRUNTIME in backends and _ours(name):
            run = make_run(name, model, ONNXRUNTIME, device, x)
            label = f"{name} (onnxruntime CPU)"
            results.append(_measure(config, (name, label), ONNXRUNTIME, run, peak(ONNXRUNTIME), size))
        del model
    out = {
        "device": _device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "scale": scale,
        "input": list(x.shape[-2:]),
        "output": [x.shape[-2] * scale, x.shape[-1] * scale],
        "warmup": warmup,
        "runs": runs,
        "limit": limit_name(),
        "limit_tflops": limit,
        "results": [r.as_dict() for r in results],
    }
    out["speedups"] = speedups(results)
    return out


def limit_name() -> str:
    """What the limit line measures, e.g. `3x3 conv 256->256 at 128x128, channels_last`."""
    channels_in, channels_out, k, size = LIMIT_CONV
    return f"{k}x{k} conv {channels_in}->{channels_out} at {size}x{size}, channels_last"


def speedups(results: list[Result]) -> dict[str, float]:
    """Latency of each other run divided by PLKSR's, by label: the peers' runs and PLKSR's own other runs (reference,
    onnxruntime), not those of our other models."""
    plksr = next((r for r in results if r.label == "PLKSR"), None)
    if plksr is None:
        return {}
    others = [r for r in results if r.label != "PLKSR" and (r.model == "PLKSR" or not _ours(r.model))]
    return {r.label: r.latency_ms / plksr.latency_ms for r in others}


def _ours(name: str) -> bool:
    """Whether a model name is a preset of `archs.registry` (timed through Upscaler, with compiled and onnxruntime
    rows)."""
    from plksr_arch.archs.registry import presets

    return name in presets()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        model = ""
    return f"{model or platform.processor() or 'CPU'} ({torch.get_num_threads()} threads, {cpu_isa()})"
