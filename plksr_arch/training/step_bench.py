"""`plksr bench --train -opt X.yml`: where a training step goes, and how fast `plksr train` trains an option file
against a baseline.

Two trainers run the option file's own data, batch and network, each in a fresh process (`python -m
plksr_arch.training.step_bench`), alternately, `rounds` times:
- **ours**: what `plksr train` runs (`PLKSRModel`: measured convolution routes, AMP as the runtime resolves it,
  fused optimizer, the capped persistent data loader);
- **baseline**: BasicSR's own `SRModel` with the same network in fp32 NCHW on BasicSR's data loader as the file
  asks for it. It steps exactly like the official trainer (dslisleedh/PLKSR's `ESRModel` on BasicSR's
  `train_pipeline`, whose CUDA-only autocast is off on a CPU): same weights after the same iterations (checked
  against the official code, see docs/training.md).

Each process times `iters` iterations after `warmup` (data waits included, as training logs count them) and reports
s/iter, images/s and its peak resident memory (and CUDA's peak allocation). A last `ours` process breaks one step
into parts: the PLK block's parts (channel mixer, PLKC, EA, 1x1 refine), the other convolutions, the loss, the
optimizer step and the data wait, each timed forward + backward in isolation on the training shapes, with its
rate against the machine's large-convolution rate (`measure.conv_limit_tflops`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

TRAINERS = ("ours", "baseline")


def _options(opt_path: str, trainer: str) -> dict:
    from plksr_arch.training.options import load_options

    opt = load_options(opt_path, is_train=True, check_paths=True)
    opt["datasets"] = {"train": opt["datasets"]["train"]}  # no validation in a benchmark
    if trainer == "baseline":
        opt["model_type"] = "SRModel"
    opt["path"].update(pretrain_network_g=None, resume_state=None)
    return opt


def _build(opt: dict, trainer: str) -> tuple[Any, Any]:
    """(model, batch iterator) as the trainer's pipeline builds them (`train_pipeline.training_setup`: ours fast, the
    baseline as BasicSR does)."""
    import logging

    from basicsr.models import build_model

    from plksr_arch.training.process import start_process
    from plksr_arch.training.train_pipeline import training_setup

    start_process(opt)
    loader, sampler, _, _ = training_setup(opt, logging.getLogger("basicsr"), fast=trainer == "ours")

    def batches():
        epoch = 0
        while True:
            sampler.set_epoch(epoch)
            yield from loader
            epoch += 1

    return build_model(opt), batches()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(opt_path: str, trainer: str, warmup: int, iters: int, parts: bool) -> dict:
    """One trainer's figures (in this process): s/iter, images/s, peak memory, and with `parts` the breakdown."""
    from plksr_arch.runtime.device import precision_name

    opt = _options(opt_path, trainer)
    model, batches = _build(opt, trainer)
    device = model.device
    data_seconds, start = 0.0, 0.0
    for i in range(warmup + iters):
        if i == warmup:
            _sync(device)
            start, data_seconds = time.perf_counter(), 0.0
        tick = time.perf_counter()
        batch = next(batches)
        data_seconds += time.perf_counter() - tick
        model.feed_data(batch)
        model.optimize_parameters(i + 1)
    _sync(device)
    seconds = (time.perf_counter() - start) / iters
    batch_size = model.lq.shape[0]
    result = {
        "trainer": trainer,
        "model": type(model).__name__,
        "s_per_iter": seconds,
        "images_per_s": batch_size / seconds,
        "data_s_per_iter": data_seconds / iters,
        "batch": list(model.lq.shape),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_vram_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "precision": precision_name(model.amp_dtype if getattr(model, "use_amp", False) else None),
        "routes": sorted(set((getattr(model, "routes", None) or {}).values())),
        "workers": opt["datasets"]["train"].get("num_worker_per_gpu", 0),
    }
    if parts:
        result["parts"] = breakdown(model, data_seconds / iters)
    return result


def _part_name(path: str, module: nn.Module) -> str | None:
    """The breakdown part a module of the network belongs to (None: counted inside its parent's part)."""
    from plksr_arch.archs.plksr_arch import EA, _PartialConv

    leaf = path.rsplit(".", 1)[-1]
    if leaf in ("channe_mixer", "channel_mixer"):
        return f"channel mixer ({type(module).__name__})"
    if isinstance(module, _PartialConv):
        conv = getattr(module, "conv", None)
        return f"PLKC ({conv.kernel_size[0]}x{conv.kernel_size[0]})" if conv is not None else "PLKC"
    if isinstance(module, EA):
        return "EA"
    if leaf == "refine":
        return "refine (1x1)"
    if isinstance(module, nn.Conv2d) and path.count(".") == 1:
        return "head/tail convs"
    return None


def _time_fwd_bwd(module: nn.Module, x: torch.Tensor, autocast: Callable[[], Any]) -> tuple[float, float]:
    """Median ms of `module`'s forward and of its backward (input and parameter gradients) on `x`."""
    from plksr_arch.runtime.measure import time_runs

    params = [p for p in module.parameters() if p.requires_grad]
    inputs = [x, *params] if x.requires_grad else params

    def forward() -> torch.Tensor:
        with autocast():
            return module(x)

    out = forward()
    grad = torch.randn_like(out)
    fwd = time_runs(forward, x.device, warmup=1, runs=3)
    both = time_runs(lambda: torch.autograd.grad(forward(), inputs, grad), x.device, warmup=1, runs=3)
    return fwd, max(both - fwd, 0.0)


def breakdown(model: Any, data_ms_per_iter: float) -> list[dict]:
    """The parts of one training step of `model` (after its steps ran, so routes are in place), in ms per
    iteration, with nominal GFLOP and the rate against the large-convolution limit of the step's precision."""
    from plksr_arch.runtime.device import precision_name
    from plksr_arch.runtime.measure import conv_limit_tflops, count_flops

    net = model.get_bare_model(model.net_g)
    lq, device = model.lq, model.device
    use_amp = getattr(model, "use_amp", False)
    precision = precision_name(model.amp_dtype if use_amp else None)

    def autocast() -> Any:
        return model._autocast(use_amp) if hasattr(model, "_autocast") else torch.autocast(device.type, enabled=False)

    found: dict[str, list[tuple[nn.Module, torch.Tensor]]] = defaultdict(list)
    handles = []
    for path, module in net.named_modules():
        name = _part_name(path, module)
        if name is not None:

            def hook(m: nn.Module, args: tuple, name: str = name) -> None:
                found[name].append((m, args[0].detach().clone().requires_grad_(args[0] is not lq)))

            handles.append(module.register_forward_pre_hook(hook))
    with torch.no_grad(), autocast():
        output = net(lq)
    for handle in handles:
        handle.remove()
    limit = conv_limit_tflops(device, precision) * 1e3  # GFLOP/s
    rows = []
    for name, calls in found.items():
        module, x = calls[0]
        fwd, bwd = _time_fwd_bwd(module, x, autocast)
        gflop = count_flops(module, x.detach().float()) / 1e9 * len(calls)  # FLOPs do not depend on the dtype
        ms = (fwd + bwd) * len(calls)
        rows.append(_row(name, len(calls), fwd * len(calls), bwd * len(calls), 3 * gflop, ms, limit))
    gt = model.gt
    out = output.float().detach().requires_grad_()
    loss_fn = model.cri_pix or (lambda a, b: (a - b).abs().mean())
    loss_ms = _time_loss(loss_fn, out, gt)
    rows.append(_row("loss", 1, loss_ms[0], loss_ms[1], 0.0, sum(loss_ms), limit))
    rows.append(_row("optimizer", 1, 0.0, 0.0, 0.0, _time_optimizer(model), limit))
    rows.append(_row("data wait", 1, 0.0, 0.0, 0.0, data_ms_per_iter * 1e3, limit))
    return rows


def _row(part: str, calls: int, fwd: float, bwd: float, gflop: float, ms: float, limit: float) -> dict:
    rate = gflop / ms * 1e3 if ms and gflop else None
    return {
        "part": part,
        "calls": calls,
        "fwd_ms": fwd,
        "bwd_ms": bwd,
        "ms": ms,
        "gflop": gflop,
        "gflops": rate,
        "of_limit": rate / limit if rate else None,
    }


def _time_loss(loss_fn: Callable, out: torch.Tensor, gt: torch.Tensor) -> tuple[float, float]:
    from plksr_arch.runtime.measure import time_runs

    fwd = time_runs(lambda: loss_fn(out, gt), out.device, warmup=1, runs=3)
    both = time_runs(lambda: torch.autograd.grad(loss_fn(out, gt), [out]), out.device, warmup=1, runs=3)
    return fwd, max(both - fwd, 0.0)


def _time_optimizer(model: Any) -> float:
    """Median ms of the generator's optimizer step with the gradients of the last step (weights move: the
    breakdown runs last)."""
    from plksr_arch.runtime.measure import time_runs

    params = [p for group in model.optimizer_g.param_groups for p in group["params"]]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    return time_runs(model.optimizer_g.step, model.device, warmup=1, runs=5)


def run_child(opt_path: str, trainer: str, warmup: int, iters: int, parts: bool) -> dict:
    """`measure` in a fresh process (its own peak memory, no warm caches); its JSON result."""
    command = [sys.executable, "-m", "plksr_arch.training.step_bench", opt_path, trainer, str(warmup), str(iters)]
    done = subprocess.run([*command, *(["--parts"] if parts else [])], capture_output=True, text=True, env=os.environ)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"plksr bench --train: the {trainer} process failed: {tail[0]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_training(opt_path: str, warmup: int, iters: int, rounds: int, say: Callable[[str], None]) -> dict:
    """Both trainers alternately (`rounds` each, ours first), then ours once more with the breakdown; the report."""
    runs: dict[str, list[dict]] = {t: [] for t in TRAINERS}
    for r in range(rounds):
        for trainer in TRAINERS:
            result = run_child(opt_path, trainer, warmup, iters, parts=False)
            runs[trainer].append(result)
            say(f"round {r + 1}/{rounds} {trainer}: {result['s_per_iter']:.3f} s/iter")
    parts = run_child(opt_path, "ours", warmup, max(2, iters // 4), parts=True)
    best = {t: min(runs[t], key=lambda r: r["s_per_iter"]) for t in TRAINERS}
    return {
        "option_file": opt_path,
        "runs": runs,
        "speedup": best["baseline"]["s_per_iter"] / best["ours"]["s_per_iter"],
        "parts": parts["parts"],
        "parts_step_s": parts["s_per_iter"],
    }


def table(report: dict) -> str:
    """The report as text: one line per run, the ratio, then the breakdown."""
    lines = ["trainer   model        precision  routes                  workers  s/iter  img/s  peak RSS MiB  VRAM MiB"]
    for trainer, runs in report["runs"].items():
        for r in runs:
            vram = f"{r['peak_vram_mib']:.0f}" if r["peak_vram_mib"] is not None else "-"
            routes = ",".join(r["routes"]) or "-"
            lines.append(
                f"{trainer:<9} {r['model']:<12} {r['precision']:<10} {routes:<23} {r['workers']:>7}  "
                f"{r['s_per_iter']:6.3f}  {r['images_per_s']:5.2f}  {r['peak_rss_mib']:12.0f}  {vram:>8}"
            )
    lines.append(f"speed-up (best of each): {report['speedup']:.2f}x the baseline's iterations per second")
    lines.append("")
    lines.append(f"one step of ours ({report['parts_step_s'] * 1e3:.0f} ms measured), parts timed in isolation:")
    lines.append("part                        calls  fwd ms  bwd ms  ms/iter  share  GFLOP/s  of limit")
    total = sum(p["ms"] for p in report["parts"])
    for p in sorted(report["parts"], key=lambda p: -p["ms"]):
        rate = f"{p['gflops']:7.0f}" if p["gflops"] else "      -"
        share = f"{p['of_limit']:7.0%}" if p["of_limit"] else "      -"
        lines.append(
            f"{p['part']:<27} {p['calls']:>5}  {p['fwd_ms']:6.1f}  {p['bwd_ms']:6.1f}  {p['ms']:7.1f}  "
            f"{p['ms'] / total:5.0%}  {rate}  {share}"
        )
    lines.append(f"sum of parts: {total:.0f} ms/iter")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one trainer's figures, as JSON (plksr bench --train runs this)")
    parser.add_argument("opt")
    parser.add_argument("trainer", choices=TRAINERS)
    parser.add_argument("warmup", type=int)
    parser.add_argument("iters", type=int)
    parser.add_argument("--parts", action="store_true")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("basicsr").setLevel(logging.WARNING)
    print(json.dumps(measure(args.opt, args.trainer, args.warmup, args.iters, args.parts)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
