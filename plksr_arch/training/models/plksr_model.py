"""PLKSRModel: BasicSR's SRModel plus what PLKSR training needs (AMP, channels_last, any torch.optim optimizer).

It also loads and saves networks our way, for itself and the real-world models built on it: `load_network` reads
weights_only with one-line errors (the first mismatching key and shapes), falls back from a missing `param_key` entry
as BasicSR does (logged), and refuses a file whose stored constructor arguments disagree with the option file;
`save_network` writes every file through `weights.write.write_weights`, with the network's registry name and complete
constructor arguments, so `load_model` (plksr infer/export/convert) rebuilds the trained function.

Its option keys are declared below, once: `ModelKeys` (use_amp, amp_dtype, channels_last, large_kernel, exact; AMP
resolved by `runtime.device.amp_precision`, so `use_amp: true` is never slower than fp32; convolution routes measured
by `training.routes` before the first step unless `exact`), `TestKeys` (the `val.*` test-time
keys: use_amp, self_ensemble, tile, tile_overlap, pbar, reference, reference_file) and `TrainKeys`. EMA is BasicSR's
`train.ema_decay`. `validation` returns `evaluation.results.DatasetResult`; what only testing adds (the bicubic
baseline, comparison strips) comes through its `on_image` hook from the test pipeline.
"""

from __future__ import annotations

import contextlib
import math
import os
import os.path as osp
import shutil
import statistics
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from inspect import signature
from typing import Any, ClassVar

import numpy as np
import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, imwrite, tensor2img
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from plksr_arch.errors import UserError
from plksr_arch.evaluation.metrics import image_metrics
from plksr_arch.evaluation.results import DatasetResult, ImageResult
from plksr_arch.inference.tiles import check_tiling, self_ensemble, tiled_forward
from plksr_arch.inference.upscaler import mixed_precision_forward
from plksr_arch.runtime.device import (
    amp_precision,
    autocast_dtype,
    check_amp_dtype,
    describe,
    inference_memory_format,
    needs_grad_scaler,
    precision_name,
    resolve_num_gpu,
)
from plksr_arch.training.basicsr_keys import missing_vgg_weights
from plksr_arch.training.keys import OptionKeys, fail, optimizer_class, option
from plksr_arch.training.routes import LARGE_KERNEL_CHOICES, adopt_all, apply_routes, plan_routes, time_pass
from plksr_arch.weights.read import load_into
from plksr_arch.weights.write import network_arguments, write_torch_file, write_weights

# `compile: auto` tries torch.compile when at least this many iterations remain (compiling costs 20-60 s on a CPU).
COMPILE_MIN_ITERS = 5000
# (image name, LR tensor, SR and GT uint8 BGR images, the image's scores) -> a baseline's scores or None
OnImage = Callable[[str, torch.Tensor, np.ndarray, np.ndarray | None, dict], dict | None]


class NonFiniteLoss(UserError):
    """Training stopped after `train.nonfinite_limit` steps in a row were skipped for a non-finite loss/gradient."""


class SaveError(UserError):
    """A checkpoint could not be written (disk full, no permission); the ones saved before are intact."""


@dataclass(frozen=True)
class ModelKeys(OptionKeys):
    """Top-level keys PLKSRModel adds to BasicSR's option files."""

    section: ClassVar[str] = ""

    use_amp: bool = option(False, "train under autocast, dtype by the runtime's AMP rule (off where it is fp32)")
    amp_dtype: str = option("auto", "auto | fp16 | bf16: fp16 + grad scaler on CUDA; on a CPU bf16 if native")
    channels_last: bool | None = option(
        None, "NHWC (true) or NCHW (false) convolutions in training; null = the faster, measured (training.routes)"
    )
    large_kernel: str = option("auto", "PLKC in training: auto (measured) | direct | spectral (FFT)")
    exact: bool = option(False, "the official trainer's arithmetic bit for bit (plksr train --exact): no routes")
    compile: bool | str = option(
        False,
        "torch.compile net_g's training pass: false | true | auto (tried on long single-process runs, kept if faster)",
    )

    @classmethod
    def check(cls, opt: dict, source: str, *, is_train: bool, check_paths: bool) -> None:
        keys = cls.of(opt)
        try:
            check_amp_dtype(keys.amp_dtype)
        except ValueError as err:
            raise fail(source, "amp_dtype", str(err)) from None
        if keys.compile not in (True, False, "auto"):
            raise fail(source, "compile", f"{keys.compile!r} is not one of auto, true, false")
        if keys.large_kernel not in LARGE_KERNEL_CHOICES:
            raise fail(source, "large_kernel", f"{keys.large_kernel!r} is not one of {', '.join(LARGE_KERNEL_CHOICES)}")


@dataclass(frozen=True)
class TestKeys(OptionKeys):
    """`val.*` keys PLKSRModel adds: test-time settings of validation during training and of `plksr test`."""

    section: ClassVar[str] = "val"

    use_amp: bool = option(False, "test under autocast (amp_dtype); the global skip, output and metrics stay fp32")
    self_ensemble: bool = option(False, "mean of the eight flips/rotations (x8), 5-8x slower")
    tile: int | None = option(None, "LR tile size in pixels, to bound memory; null = whole images")
    tile_overlap: int = option(16, "LR pixels shared by neighbouring tiles, feathered")
    pbar: bool | None = option(None, "progress bar per dataset (images/s); null = on when testing")
    reference: str | None = option("auto", "key of the published results in reference_file; auto")
    reference_file: str | None = option(
        "paper", "YAML file of published results; paper = the PLKSR paper's tables (shipped)"
    )

    @classmethod
    def check(cls, opt: dict, source: str, *, is_train: bool, check_paths: bool) -> None:
        keys = cls.of(opt)
        try:
            check_tiling(keys.tile, keys.tile_overlap)
        except ValueError as err:
            raise fail(source, "val", str(err)) from None
        ref_file = keys.reference_file
        if check_paths and ref_file not in (None, "paper") and not osp.isfile(osp.expanduser(ref_file)):
            raise fail(source, "val.reference_file", f"'{ref_file}' does not exist")


@dataclass(frozen=True)
class TrainKeys(OptionKeys):
    """`train.*` keys PLKSRModel adds."""

    section: ClassVar[str] = "train"

    nonfinite_limit: int = option(10, "steps in a row with a non-finite loss/gradient (each skipped) that stop a run")

    @classmethod
    def check(cls, opt: dict, source: str, *, is_train: bool, check_paths: bool) -> None:
        limit = cls.of(opt).nonfinite_limit
        if limit < 1:
            raise fail(source, "train.nonfinite_limit", f"{limit!r}: must be >= 1")


class PLKSRModel(SRModel):
    """SRModel with automatic mixed precision, channels_last and torch.optim optimizers; CPU-friendly.

    Training never applies a non-finite update: a step whose loss (or, without a grad scaler, gradient) is not finite
    on any rank is skipped on all ranks and logged with the loss term's name; `train.nonfinite_limit` skipped steps in
    a row raise `NonFiniteLoss` (the training loop saves the last good weights first). Training states also hold the
    grad scalers and the best validation metrics; the best validation PSNR's weights are kept as `net_g_best.pth`.

    Speed (docs/training.md, "Speed"): net_g's convolutions take the routes `training.routes` measures before the
    first step (kept in the training state), the optimizer its fused implementation, and on CUDA the guard above
    runs on the device (`_deferred_step`). `exact: true` (`plksr train --exact`) keeps the official trainer's
    arithmetic bit for bit instead.
    """

    option_keys = (ModelKeys, TestKeys, TrainKeys)

    def __init__(self, opt: dict) -> None:
        resolve_num_gpu(opt)
        keys, self.test_keys = ModelKeys.read(opt), TestKeys.read(opt.get("val"))
        self.keys, self.exact = keys, keys.exact
        # --exact: the official ESRModel's NCHW fp32 arithmetic (its AMP is CUDA fp16 autocast, a no-op on a CPU).
        self.channels_last = False if self.exact else keys.channels_last
        self.routes: dict[str, str] | None = None
        self.compiled: bool | None = None  # whether net_g's training pass runs compiled (decided with the routes)
        self.nonfinite_limit = TrainKeys.read(opt.get("train")).nonfinite_limit
        self.nonfinite_streak = 0
        super().__init__(opt)
        if self.is_train and not self.exact:  # routed convolutions from the start, so hooks added later stay on them
            adopt_all(self.get_bare_model(self.net_g))
        self.forward_g: Callable[[torch.Tensor], torch.Tensor] = self.net_g  # compiled by `_try_compile`
        log = get_root_logger()
        self.amp_dtype: torch.dtype | None = None
        if self.exact and (keys.use_amp or self.test_keys.use_amp):
            self.amp_dtype = torch.float16 if self.device.type == "cuda" else None
            log.info(f"--exact: official AMP, {self.amp_dtype or 'off (fp32)'} on {describe(self.device)}")
        elif keys.use_amp or self.test_keys.use_amp:
            self.amp_dtype = autocast_dtype(amp_precision(keys.amp_dtype, self.device))
            log.info(f"Automatic mixed precision: {self.amp_dtype or 'off (fp32)'} on {describe(self.device)}")
        # AMP that resolves to fp32 (a CPU without native bf16) is no AMP at all.
        self.use_amp = keys.use_amp and self.amp_dtype is not None
        self.val_amp = self.test_keys.use_amp and self.amp_dtype is not None
        # One grad scaler per optimizer (net_g, and net_d in GAN models); each is saved in the training states.
        scaling = self.use_amp and needs_grad_scaler(self.amp_dtype)
        self.scalers = [torch.amp.GradScaler("cuda", enabled=scaling) for _ in self.optimizers]
        # On CUDA the guard runs on the device and is read when ready (`_deferred_step`); elsewhere at once.
        self.deferred_guard = self.device.type == "cuda" and not self.exact
        self._pending: deque[tuple[int, list[str], torch.Tensor, Any]] = deque()
        self.self_ensemble = self.test_keys.self_ensemble
        self.tile, self.tile_overlap = self.test_keys.tile, self.test_keys.tile_overlap
        check_tiling(self.tile, self.tile_overlap)

    def print_network(self, net: torch.nn.Module) -> None:
        """One summary line at INFO (BasicSR logs the whole module tree, hundreds of lines); the tree at DEBUG."""
        net = self.get_bare_model(net)
        n_params = sum(p.numel() for p in net.parameters())
        log = get_root_logger()
        spec = next(
            (v for k, v in self.opt.items() if k.startswith("network_") and v.get("type") == type(net).__name__), ""
        )
        log.info(f"Network: {type(net).__name__} {spec}, with parameters: {n_params:,d}")
        log.debug(str(net))

    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        """Move to the device (channels_last if asked); DDP with device_ids only on CUDA, so Gloo on CPU works."""
        net = net.to(self.device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        if self.opt["dist"]:
            ids = [torch.cuda.current_device()] if self.device.type == "cuda" else None
            return DistributedDataParallel(
                net, device_ids=ids, find_unused_parameters=self.opt.get("find_unused_parameters", False)
            )
        return super().model_to_device(net)

    def init_training_settings(self) -> None:
        perceptual = self.opt["train"].get("perceptual_opt")
        problem = perceptual and perceptual.get("type") == "PLKSRPerceptualLoss" and missing_vgg_weights(perceptual)
        if problem:  # before BasicSR builds the loss
            raise UserError(f"train.perceptual_opt.vgg_weights: {problem}")
        super().init_training_settings()
        if self.channels_last and hasattr(self, "net_g_ema"):
            self.net_g_ema.to(memory_format=torch.channels_last)

    def get_optimizer(self, optim_type: str, params, lr: float, **kwargs) -> torch.optim.Optimizer:
        """Any optimizer in torch.optim by name (Adam, AdamW, ...); its fused implementation (one kernel for all
        parameters) when it has one and the option file names neither `fused` nor `foreach`, except with --exact."""
        cls = optimizer_class(optim_type)
        fused = not self.exact and not {"fused", "foreach"} & set(kwargs) and "fused" in signature(cls).parameters
        if fused:
            kwargs["fused"] = True
            get_root_logger().info(f"Optimizer {optim_type}: fused")
        return cls(params, lr, **kwargs)

    def _route(self) -> None:
        """Before the first step, once: give net_g's convolutions their training routes (`training.routes`) and
        decide whether its training pass runs compiled (`_try_compile`); a resumed training state's choices are
        kept, else they are measured on this batch among what the option file allows. Nothing with --exact."""
        if self.exact or self.routes is not None:
            return
        net = self.get_bare_model(self.net_g)
        saved = getattr(self, "_saved_routes", None)
        if saved:
            apply_routes(net, saved["routes"])
            self.routes, self.compiled = saved["routes"], saved["compiled"]
            get_root_logger().info(f"Training routes{' and compilation' if self.compiled else ''}: kept from the state")
            if self.compiled:
                self.forward_g = torch.compile(self.net_g)
            return
        autocast = lambda: self._autocast(self.use_amp)  # noqa: E731
        self.routes = plan_routes(
            net,
            self.lq,
            autocast,
            precision_name(self.amp_dtype if self.use_amp else None),
            channels_last=self.channels_last,
            large_kernel=self.keys.large_kernel,
        )
        apply_routes(net, self.routes)
        self._try_compile(autocast)

    def _try_compile(self, autocast: Callable[[], Any]) -> None:
        """`compile: true` compiles net_g's training pass; `auto` tries it when at least `COMPILE_MIN_ITERS`
        iterations remain in a single-process run and keeps it if compiled forward + backward passes are faster than
        eager ones (alternating, on this batch). Off by default: on 2 CPU cores (AVX2 oneDNN, torch 2.14.1) PLKSR-tiny
        compiled in 4-21 s and its pass was as often slower (962 against 847 ms) as faster (0.79 against 0.85 s per
        step), and a benchmark process that compiled it crashed in glibc (`malloc(): unaligned tcache chunk
        detected`) twice out of two. A compilation that fails is said in one warning line; training goes on
        eagerly."""
        choice = self.keys.compile
        self.compiled = False
        if choice is False:
            return
        remaining = self.opt["train"]["total_iter"] - self.current_iter
        if choice == "auto" and (remaining < COMPILE_MIN_ITERS or self.opt["dist"]):
            return
        log = get_root_logger()
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        compiled = torch.compile(self.net_g)
        tick = time.perf_counter()
        try:
            time_pass(compiled, params, self.lq, autocast, runs=1)  # compiles forward and backward
        except Exception as err:  # noqa: BLE001  (inductor's failures have no common type)
            log.warning(f"compile: torch.compile failed ({type(err).__name__}: {str(err).splitlines()[0]}); eager")
            return
        seconds = time.perf_counter() - tick
        # Alternating rounds, medians: passes on a shared CPU vary by 10%, more than compiling gains.
        pairs = [
            (time_pass(self.net_g, params, self.lq, autocast), time_pass(compiled, params, self.lq, autocast))
            for _ in range(1 if choice is True else 3)
        ]
        eager_ms, compiled_ms = (statistics.median(pair[i] for pair in pairs) for i in (0, 1))
        self.compiled = choice is True or compiled_ms < eager_ms
        if self.compiled:
            self.forward_g = compiled
        log.info(
            f"torch.compile of the training pass: {'kept' if self.compiled else 'not kept'} (compiled {compiled_ms:.0f}"
            f" ms, eager {eager_ms:.0f} ms per forward + backward; compiling took {seconds:.0f} s)"
        )

    def _autocast(self, enabled: bool) -> contextlib.AbstractContextManager:
        if not enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def feed_data(self, data: dict) -> None:
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        cuda = self.device.type == "cuda"  # batches come pinned (training.loader): the copies overlap
        self.lq = data["lq"].to(self.device, memory_format=fmt, non_blocking=cuda)
        if "gt" in data:
            self.gt = data["gt"].to(self.device, memory_format=fmt, non_blocking=cuda)

    def _finite(self, terms: dict[str, torch.Tensor], what: str) -> bool:
        """Whether every loss term is finite on every rank (one all-reduce when distributed, so all ranks skip
        together and DDP stays in step); a warning names the non-finite terms."""
        bad = torch.stack([~torch.isfinite(t.detach().float()) for t in terms.values()]).float()
        if self.opt["dist"]:
            torch.distributed.all_reduce(bad)
        bad_terms = [f"{name}={t.item():g}" for (name, t), b in zip(terms.items(), bad.tolist(), strict=True) if b]
        if bad_terms:
            self.nonfinite_terms = ", ".join(bad_terms)
            get_root_logger().warning(
                f"iter {self.current_iter}: non-finite {self.nonfinite_terms} (on some rank): {what} step skipped"
            )
        return not bad_terms

    def _backward(self, terms: dict[str, torch.Tensor], scaler: torch.amp.GradScaler, what: str) -> bool:
        """Backward of the sum of `terms` when all are finite (see `_finite`); False, with nothing done, otherwise."""
        if not self._finite(terms, what):
            return False
        scaler.scale(sum(terms.values())).backward()
        return True

    def _step(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, ok: bool, what: str) -> bool:
        """The optimizer step after finite backward passes (`ok`). Without a grad scaler the gradients are checked
        too (with one, the scaler skips non-finite gradients itself and lowers its scale). A skipped step leaves the
        weights and the scaler as they were."""
        if ok and not scaler.is_enabled():
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            ok = self._finite({"gradient norm": torch.nn.utils.get_total_norm(grads)}, what)
        if ok:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.zero_grad(set_to_none=True)
        return ok

    def _count_skips(self, skipped: bool) -> None:
        """Track skipped steps in a row; raise NonFiniteLoss at `train.nonfinite_limit`."""
        self.nonfinite_streak = self.nonfinite_streak + 1 if skipped else 0
        if self.nonfinite_streak >= self.nonfinite_limit:
            raise NonFiniteLoss(
                f"stopped at iter {self.current_iter}: {self.nonfinite_streak} steps in a row had a non-finite loss "
                f"or gradient (last: {self.nonfinite_terms}); lower train.optim_g.lr, or check the data and use_amp"
            )

    def optimize_parameters(self, current_iter: int) -> None:
        self.current_iter = current_iter
        self._route()
        self.optimizer_g.zero_grad(set_to_none=True)
        with self._autocast(self.use_amp):
            self.output = self.forward_g(self.lq)
        output = self.output.float()
        loss_dict: OrderedDict[str, torch.Tensor] = OrderedDict()
        if self.cri_pix:
            loss_dict["l_pix"] = self.cri_pix(output, self.gt)
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(output, self.gt)
            if l_percep is not None:
                loss_dict["l_percep"] = l_percep
            if l_style is not None:
                loss_dict["l_style"] = l_style
        scaler = self.scalers[0]
        if self.deferred_guard and self.optimizer_g.defaults.get("fused"):
            self._deferred_step(loss_dict, scaler)
            return
        stepped = self._step(self.optimizer_g, scaler, self._backward(loss_dict, scaler, "net_g"), "net_g")
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if stepped and self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
        self._count_skips(not stepped)

    def _deferred_step(self, terms: dict[str, torch.Tensor], scaler: torch.amp.GradScaler) -> None:
        """The step with the non-finite guard kept on the device, so the host never waits for the GPU: the fused
        optimizer skips the update itself (`found_inf`: a non-finite loss term, or without a grad scaler a non-finite
        gradient norm; with one, the scaler's own overflow check), the EMA blends with weight 0 on a skipped step,
        and the flags and loss values are copied back without blocking and read when they have arrived
        (`_read_flags`), so a run of skipped steps stops training a step or two later than the synchronous guard.
        Losses for the log stay on the device until `get_current_log`."""
        self._read_flags()
        optimizer = self.optimizer_g
        values = torch.stack([t.detach().float().reshape(()) for t in terms.values()])
        bad = (~torch.isfinite(values)).any().float()
        if self.opt["dist"]:
            torch.distributed.all_reduce(bad)
        scaler.scale(sum(terms.values())).backward()
        if scaler.is_enabled():
            scaler.step(optimizer)  # a fused optimizer takes the scaler's found_inf: no host sync
            found = sum(scaler._per_optimizer_states[id(optimizer)]["found_inf_per_device"].values())
            scaler.update()
            skip = (bad + found) > 0
        else:
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            skip = (bad > 0) | ~torch.isfinite(torch.nn.utils.get_total_norm(grads))
            optimizer.found_inf = skip.float()
            optimizer.step()
            del optimizer.found_inf
        if self.ema_decay > 0:
            weight = (1 - self.ema_decay) * (~skip).float()
            net = dict(self.get_bare_model(self.net_g).named_parameters())
            for key, param in self.net_g_ema.named_parameters():
                param.data.lerp_(net[key].data, weight)
        counted = skip if not scaler.is_enabled() else bad > 0  # fp16 overflows are the scaler's business
        flags = torch.cat([counted.float().reshape(1), values]).to("cpu", non_blocking=True)
        event = None
        if flags.device != values.device:
            event = torch.cuda.Event()
            event.record()
        self._pending.append((self.current_iter, list(terms), flags, event))
        with torch.no_grad():
            if self.opt["dist"]:
                torch.distributed.all_reduce(values)
                values /= self.opt["world_size"]
        self.log_dict = OrderedDict(zip(terms, values, strict=True))

    def _read_flags(self) -> None:
        """Count the skipped steps whose device flags have arrived (`_count_skips`), oldest first, warning with the
        loss terms' values."""
        while self._pending and (self._pending[0][3] is None or self._pending[0][3].query()):
            iteration, names, flags, _ = self._pending.popleft()
            if flags[0]:
                bad = [f"{n}={v:g}" for n, v in zip(names, flags[1:].tolist(), strict=True) if not math.isfinite(v)]
                self.nonfinite_terms = ", ".join(bad) or "gradient norm"
                get_root_logger().warning(
                    f"iter {iteration}: non-finite {self.nonfinite_terms} (on some rank): net_g step skipped"
                )
            self._count_skips(bool(flags[0]))

    def get_current_log(self) -> dict:
        """The last step's losses as numbers (the deferred guard leaves them on the device until asked)."""
        return OrderedDict((k, float(v)) for k, v in self.log_dict.items())

    def test(self) -> None:
        """`self.output` (fp32) for `self.lq`, with the `val.*` self-ensemble, tiling and AMP settings."""
        net = self.get_bare_model(getattr(self, "net_g_ema", self.net_g))
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.channels_last is None:  # as inference runs (channels_last on CPUs)
            fmt = inference_memory_format(precision_name(self.amp_dtype if self.val_amp else None), self.device)

        def forward(x: torch.Tensor) -> torch.Tensor:
            return mixed_precision_forward(
                net, x.contiguous(memory_format=fmt), self.amp_dtype if self.val_amp else None
            )

        def ensembled(x: torch.Tensor) -> torch.Tensor:
            return self_ensemble(forward, x) if self.self_ensemble else forward(x)

        was_training = net.training
        net.eval()
        with torch.no_grad():
            if self.tile:
                output = tiled_forward(ensembled, self.lq, self.opt["scale"], self.tile, self.tile_overlap)
            else:
                output = ensembled(self.lq)
        self.output = output.float()
        net.train(was_training)

    @contextlib.contextmanager
    def _staged(self, *keys: str) -> Iterator[None]:
        """Within the block, `path.<key>` folders point to `.partial` subfolders, whose files are moved into place
        after it: a kill during a save never leaves a truncated file for `--auto_resume` or a user to pick. A write
        that fails (OSError) removes the staged files and raises SaveError; nothing in place is touched. Files a
        killed save left in `.partial` are dropped first."""
        paths = self.opt["path"]
        finals = {key: paths[key] for key in keys}
        staging = {key: osp.join(folder, ".partial") for key, folder in finals.items()}
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
        paths.update(staging)
        try:
            yield
        except OSError as err:
            for folder in staging.values():
                shutil.rmtree(folder, ignore_errors=True)
            raise SaveError(
                f"cannot save: {err}; the checkpoints saved before are intact (resume with --auto_resume once this "
                "is fixed)"
            ) from None
        finally:
            paths.update(finals)
        for key, folder in staging.items():
            for name in os.listdir(folder):
                os.replace(osp.join(folder, name), osp.join(finals[key], name))
            os.rmdir(folder)

    def save(self, epoch: int, current_iter: int) -> None:
        """BasicSR's save (weights of every network + training state), written by rank 0 only (DDP ranks hold the same
        weights; BasicSR lets every rank write the same files) and atomically (`_staged`)."""
        if self.opt.get("rank", 0) != 0:
            return
        with self._staged("models", "training_states"):
            super().save(epoch, current_iter)

    def _network_spec(self, net: Any) -> dict | None:
        """The option file's `network_d` for the discriminator, else its `network_g` (net_g and its EMA copy)."""
        is_d = hasattr(self, "net_d") and self.get_bare_model(net) is self.get_bare_model(self.net_d)
        return self.opt.get("network_d" if is_d else "network_g")

    def load_network(self, net: Any, load_path: str, strict: bool = True, param_key: str | None = "params") -> None:
        """BasicSR's `load_network` (the `param_key` entry, `params` when the file has none, logged) read with
        `weights.read.load_into`: weights_only, one-line CheckpointErrors naming the first mismatching key, and a file's
        stored constructor arguments checked against the option file's."""
        bare = self.get_bare_model(net)
        log = get_root_logger()
        log.info(f"Loading {type(bare).__name__} model from {load_path} ({param_key}).")
        arguments = network_arguments(bare, self._network_spec(bare))
        load_into(bare, load_path, param_key=param_key, strict=strict, arguments=arguments, log=log)

    def save_network(self, net: Any, net_label: str, current_iter: Any, param_key: Any = "params") -> None:
        """BasicSR's `<net_label>_<iter>.pth` (`latest` for -1) of one network or a list (one entry per param_key),
        written once by `weights.write.write_weights` with the network's registry name and constructor arguments
        (BasicSR retries three times and then carries on without the file)."""
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        bare = self.get_bare_model(nets[0])
        weights = {key: self.get_bare_model(n).state_dict() for n, key in zip(nets, keys, strict=True)}
        name = f"{net_label}_{'latest' if current_iter == -1 else current_iter}.pth"
        spec = self.opt.get(net_label.replace("net_", "network_"))
        write_weights(osp.join(self.opt["path"]["models"], name), weights, network_arguments(bare, spec))

    def save_training_state(self, epoch: int, current_iter: int) -> None:
        """BasicSR's training state (epoch, iter, optimizers, schedulers) plus the grad scalers and the best
        validation metrics, so a resumed run continues them; none for the final save (`current_iter` -1)."""
        if current_iter == -1:
            return
        state = {
            "epoch": epoch,
            "iter": current_iter,
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "scalers": [s.state_dict() for s in self.scalers],
            "best_metric_results": getattr(self, "best_metric_results", {}),
            "routes": {"routes": self.routes, "compiled": self.compiled} if self.routes else None,
        }
        write_torch_file(state, osp.join(self.opt["path"]["training_states"], f"{current_iter}.state"))

    def resume_training(self, resume_state: dict) -> None:
        """BasicSR's resume, then the grad scalers and best metrics when the state has them (states of older runs, or
        of runs with AMP off, have none: the scalers then start afresh, which the log says)."""
        super().resume_training(resume_state)
        self.best_metric_results = resume_state.get("best_metric_results") or {}
        self._saved_routes = None if self.exact else resume_state.get("routes")
        saved_states = resume_state.get("scalers") or [{}] * len(self.scalers)
        for i, (scaler, saved) in enumerate(zip(self.scalers, saved_states, strict=True)):
            if not scaler.is_enabled():
                continue
            if saved:
                scaler.load_state_dict(saved)
            else:
                get_root_logger().info(f"The training state has no grad scaler {i} state: it starts afresh.")

    def _save_best(self, dataset: str, current_iter: Any) -> None:
        """Keep `net_g_best.pth` (as `net_g_<iter>.pth`: params and params_ema) when this validation set a new best
        PSNR on the first validation set (rank 0 runs validation)."""
        if not self.opt["is_train"]:
            return
        psnr = next((m for m, spec in self.opt["val"]["metrics"].items() if spec["type"] == "calculate_psnr"), None)
        first = next(ds["name"] for phase, ds in self.opt["datasets"].items() if phase.startswith("val"))
        best = self.best_metric_results.get(dataset, {}).get(psnr)
        new = best is not None and best["iter"] == current_iter and best["iter"] != getattr(self, "_best_iter", None)
        if psnr is None or dataset != first or not new:
            return
        self._best_iter = current_iter  # the final validation repeats the last iteration's
        with self._staged("models"):
            nets, keys = [self.net_g], ["params"]
            if hasattr(self, "net_g_ema"):
                nets, keys = [self.net_g, self.net_g_ema], ["params", "params_ema"]
            self.save_network(nets, "net_g", "best", param_key=keys)
        get_root_logger().info(
            f"Best {psnr} on {dataset} so far ({best['val']:.4f} at iter {current_iter}): "
            f"{osp.join(self.opt['path']['models'], 'net_g_best.pth')}"
        )

    def _image_path(self, dataset: str, image: str, current_iter: Any) -> str:
        """Where BasicSR saves a validation/test image."""
        root = self.opt["path"]["visualization"]
        if self.opt["is_train"]:
            return osp.join(root, image, f"{image}_{current_iter}.png")
        return osp.join(root, dataset, f"{image}_{self.opt['val'].get('suffix') or self.opt['name']}.png")

    def validation(
        self, dataloader, current_iter: Any, tb_logger, save_img: bool = False, on_image: OnImage | None = None
    ) -> DatasetResult | None:
        """BasicSR's validation (rank 0 alone when distributed), returning the dataset's results; None on the other
        ranks. `on_image(name, lq, sr, gt, scores)` runs for each image (after it is scored) and may return the
        metrics of a baseline for its record: `plksr test` passes `evaluation.metrics.BicubicBaseline`."""
        if self.opt["dist"] and self.opt["rank"] != 0:
            return None
        return self.nondist_validation(dataloader, current_iter, tb_logger, save_img, on_image)

    def nondist_validation(
        self, dataloader, current_iter: Any, tb_logger, save_img: bool, on_image: OnImage | None = None
    ) -> DatasetResult:
        """BasicSR's validation loop returning typed results, with a progress bar (images/s) and a timing line;
        the means also go to BasicSR's best-metric tracking, log and tensorboard as before."""
        dataset = dataloader.dataset.opt["name"]
        metrics_opt = self.opt["val"].get("metrics") or {}
        if metrics_opt:
            self._initialize_best_metric_results(dataset)
        images: list[ImageResult] = []
        network_seconds = 0.0
        start = time.perf_counter()
        show = not self.opt["is_train"] if self.test_keys.pbar is None else self.test_keys.pbar
        with tqdm(total=len(dataloader), unit="img", desc=dataset, disable=not show) as pbar:  # closed on errors
            for data in dataloader:
                name = osp.splitext(osp.basename(data["lq_path"][0]))[0]
                self.feed_data(data)
                tick = time.perf_counter()
                self.test()
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                network_seconds += time.perf_counter() - tick
                sr = tensor2img([self.output.detach().cpu()])
                lq = self.lq.detach().cpu()[0]
                gt = tensor2img([self.gt.detach().cpu()]) if hasattr(self, "gt") else None
                for attr in ("lq", "gt", "output"):
                    self.__dict__.pop(attr, None)
                record = ImageResult(name, image_metrics(sr, gt, metrics_opt) if gt is not None and metrics_opt else {})
                if save_img:
                    imwrite(sr, self._image_path(dataset, name, current_iter))
                if on_image is not None:
                    record.bicubic = on_image(name, lq, sr, gt, record.metrics)
                images.append(record)
                pbar.update(1)
        result = DatasetResult(dataset, images, time.perf_counter() - start, network_seconds, tuple(metrics_opt))
        self.metric_results = result.means  # BasicSR's best-metric bookkeeping and log block read it
        if self.metric_results:
            for metric, value in self.metric_results.items():
                self._update_best_metric_result(dataset, metric, value, current_iter)
            self._log_validation_metric_values(current_iter, dataset, tb_logger)
            self._save_best(dataset, current_iter)
        n, seconds = len(images), result.seconds
        get_root_logger().info(
            f"{dataset}: {n} images in {seconds:.1f} s ({result.images_per_second:.2f} img/s; "
            f"network {network_seconds:.1f} s)"
        )
        return result

    def _log_validation_metric_values(self, current_iter, dataset_name: str, tb_logger) -> None:
        """BasicSR's validation log block, with the iteration in the header line (`plksr plot` reads it)."""
        lines = [f"Validation {dataset_name} (iter {current_iter})"]
        for metric, value in self.metric_results.items():
            best = self.best_metric_results[dataset_name][metric]
            lines.append(f"\t # {metric}: {value:.4f}\tBest: {best['val']:.4f} @ {best['iter']} iter")
        get_root_logger().info("\n".join(lines) + "\n")
        if tb_logger:
            for metric, value in self.metric_results.items():
                tb_logger.add_scalar(f"metrics/{dataset_name}/{metric}", value, current_iter)
