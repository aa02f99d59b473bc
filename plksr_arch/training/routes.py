"""Measured routes for the convolutions of a network in training: they run the way that is fastest on this machine
for the training batch, with the same weights and state-dict keys.

A route is one of
- `nchw`: oneDNN/cuDNN on NCHW activations (the official trainer's only way);
- `nhwc`: the same convolution on channels_last activations. PLKC's 16-channel 13x13 forward + backward took 10.8
  ms against 23.7 ms in NCHW (AVX2 oneDNN on an EPYC, batch 4 x 48 x 48), while DCCM's 3x3 convolutions were as
  fast or faster in NCHW: the best format differs by layer and by machine;
- `spectral`: the large kernel by FFT with autograd through the transforms (`accel.spectral_conv2d_trainable`),
  for square odd kernels from `SPECTRAL_MIN_KERNEL` up: PLKSR's 17x17 forward + backward 33 ms against 56 ms in
  NHWC, but PLKSR-tiny's 13x13 slower than direct (same machine and batch).

A `Plan` gives the large kernels one route and every other convolution another. `plan_routes` times the plans the
option keys allow on the network itself (whole forward + backward passes: format changes between layers and the
element-wise work around them count too) and keeps the fastest, leaving out a plan that would keep more
activations for the backward pass than direct NCHW convolutions (the official trainer's memory is the ceiling).
On CUDA it takes channels_last for fp16/bf16 and NCHW for fp32 without timing (cuDNN's benchmark mode already picks
algorithms). Every route gives the direct convolution's values to fp32 rounding (tests: 1e-5 relative, forward and
gradients).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass

import torch
from torch import nn

from plksr_arch.runtime.accel import spectral_candidate, spectral_conv2d_trainable
from plksr_arch.runtime.measure import time_runs

logger = logging.getLogger("plksr")

ROUTES = ("nchw", "nhwc", "spectral")
LARGE_KERNEL_CHOICES = ("auto", "direct", "spectral")


def route_forward(route: str | None, x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor, bias) -> torch.Tensor:
    """`conv`'s convolution (its geometry) of `x` with `weight` and `bias`, computed by `route` (None: as is)."""
    if route == "spectral":
        return spectral_conv2d_trainable(x, weight, bias)
    if route == "nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    elif route == "nchw":
        x = x.contiguous()
    return conv._conv_forward(x, weight, bias)


class RoutedConv2d(nn.Conv2d):
    """An `nn.Conv2d` that computes by its `route` (None until planned: as a plain conv). Built by `adopt` around an
    existing conv's parameters, so optimizers, EMA, DDP and checkpoints see the same tensors under the same keys."""

    route: str | None = None
    spectral_ok: bool = False

    @classmethod
    def adopt(cls, conv: nn.Conv2d) -> RoutedConv2d:
        """A routed conv holding `conv`'s own weight and bias (built on the meta device: no random draws)."""
        with torch.device("meta"):
            routed = cls(
                conv.in_channels,
                conv.out_channels,
                conv.kernel_size,
                conv.stride,
                conv.padding,
                conv.dilation,
                conv.groups,
                conv.bias is not None,
                conv.padding_mode,
            )
        routed.weight, routed.bias = conv.weight, conv.bias
        routed.spectral_ok = spectral_candidate(conv)
        routed.train(conv.training)
        return routed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return route_forward(self.route, x, self, self.weight, self.bias)


def adopt_all(net: nn.Module) -> None:
    """Replace every plain `nn.Conv2d` of `net` (in place) by a `RoutedConv2d` holding the same parameters."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Conv2d:
                setattr(parent, name, RoutedConv2d.adopt(child))


def routed(net: nn.Module) -> dict[str, RoutedConv2d]:
    """{module name: routed conv} of `net`."""
    return {name: m for name, m in net.named_modules() if isinstance(m, RoutedConv2d)}


@dataclass(frozen=True)
class Plan:
    """How a network's convolutions run: `body` (nchw | nhwc) for every conv but the large kernels, `large`
    (nchw | nhwc | spectral) for the large kernels (`accel.spectral_candidate`)."""

    body: str
    large: str

    def routes(self, net: nn.Module) -> dict[str, str]:
        """{conv name: route} of this plan for `net`."""
        return {name: self.large if conv.spectral_ok else self.body for name, conv in routed(net).items()}

    def __str__(self) -> str:
        return f"{self.body}, large kernels {self.large}"


def candidate_plans(has_large: bool, channels_last: bool | None, large_kernel: str) -> list[Plan]:
    """The plans the option file allows: `channels_last` true/false fixes the body's format (null: both, and the
    large kernels may take the other); `large_kernel` direct/spectral/auto excludes, forces or adds the FFT route."""
    bodies = {True: ["nhwc"], False: ["nchw"], None: ["nchw", "nhwc"]}[channels_last]
    if not has_large:
        return [Plan(body, body) for body in bodies]
    if large_kernel == "spectral":
        return [Plan(body, "spectral") for body in bodies]
    plans = [Plan(body, large) for body in bodies for large in (bodies if channels_last is None else [body])]
    plans = [p for p in plans if not (p.body == "nhwc" and p.large == "nchw")]
    if large_kernel == "auto":
        plans += [Plan(body, "spectral") for body in bodies]
    return plans


def time_pass(
    forward: Callable[[torch.Tensor], torch.Tensor], params: list, lq: torch.Tensor, autocast, runs: int = 2
) -> float:
    """Median milliseconds of `runs` forward + backward passes of `forward` on `lq` after one (gradients returned,
    never accumulated: the parameters, their `.grad` and the random stream are untouched)."""

    def step() -> None:
        with autocast():
            out = forward(lq)
        torch.autograd.grad(out.float().abs().mean(), params)

    return time_runs(step, lq.device, warmup=1, runs=runs)


def time_plan(net: nn.Module, plan: Plan, lq: torch.Tensor, autocast: Callable[[], object]) -> float:
    """`time_pass` of `net` under `plan`."""
    apply_routes(net, plan.routes(net))
    return time_pass(net, [p for p in net.parameters() if p.requires_grad], lq, autocast)


def quiet_copy(net: nn.Module) -> nn.Module:
    """A copy of `net` without the forward/backward hooks its modules carry (a caller's hooks must not see the
    measuring passes)."""
    copy = deepcopy(net)
    for module in copy.modules():
        for hooks in (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks):
            hooks.clear()
        module._backward_pre_hooks.clear()
    return copy


def saved_bytes(net: nn.Module, plan: Plan, lq: torch.Tensor, autocast: Callable[[], object]) -> int:
    """Bytes of the activations autograd keeps for the backward pass of `net` on `lq` under `plan` (parameters and
    views of a kept tensor counted once): what a training step holds at its peak, beyond the weights."""
    apply_routes(net, plan.routes(net))
    params = {p.data_ptr() for p in net.parameters()}
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if t.device.type != "meta" and storage.data_ptr() not in params:
            kept[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast():
        net(lq)
    return sum(kept.values())


def plan_routes(
    net: nn.Module,
    lq: torch.Tensor,
    autocast: Callable[[], object],
    precision: str,
    *,
    channels_last: bool | None,
    large_kernel: str,
) -> dict[str, str]:
    """{conv name: route} for training `net` on batches like `lq`. On the CPU each allowed `Plan` is timed on the
    network itself (`time_plan`, on up to 4 images of the batch) and the fastest is kept, each figure logged: whole
    passes, because format changes between layers and the element-wise work around them count too. On CUDA the
    format follows the precision (channels_last for fp16/bf16, as cuDNN's tensor cores want) and the FFT route is
    taken only when `large_kernel` forces it."""
    has_large = any(conv.spectral_ok for conv in routed(net).values())
    plans = candidate_plans(has_large, channels_last, large_kernel)
    if lq.device.type != "cpu":
        body = "nhwc" if channels_last or (channels_last is None and precision != "fp32") else "nchw"
        large = "spectral" if large_kernel == "spectral" and has_large else body
        return Plan(body, large).routes(net)
    if len(plans) > 1:
        net = quiet_copy(net)  # measured on a copy: the network's own hooks see only training
        # Memory never above the official route's: a plan that keeps more activations for the backward pass than
        # direct NCHW convolutions (measured on one image) is left out.
        base = Plan("nchw", "nchw")
        kept = {plan: saved_bytes(net, plan, lq[:1], autocast) for plan in dict.fromkeys([base, *plans])}
        budget = kept[base]
        over = [plan for plan in plans if kept[plan] > budget]
        plans = [plan for plan in plans if plan not in over] or plans[:1]
        for plan in over:
            logger.info(
                f"training routes: {plan} left out: it keeps {kept[plan] / 2**20:.2f} MiB of activations per image "
                f"against {budget / 2**20:.2f} MiB for direct NCHW convolutions"
            )
    if len(plans) == 1:
        return plans[0].routes(net)
    sample = lq[:4]
    times = {plan: time_plan(net, plan, sample, autocast) for plan in plans}
    best = min(times, key=times.get)
    measured = "; ".join(f"{plan} {ms:.0f} ms" for plan, ms in times.items())
    n, _, h, w = sample.shape
    logger.info(f"training routes ({precision}, forward + backward of {n}x{h}x{w}): {best} ({measured})")
    return best.routes(net)


def apply_routes(net: nn.Module, plan: dict[str, str]) -> None:
    """Set each routed conv's route from `plan` (a plan names every routed conv of the same network)."""
    convs = routed(net)
    if set(plan) != set(convs):
        raise ValueError(f"the route plan names {len(plan)} convolutions, the network has {len(convs)}")
    for name, route in plan.items():
        if route not in ROUTES:
            raise ValueError(f"route {route!r} of {name} is not one of {', '.join(ROUTES)}")
        convs[name].route = route
