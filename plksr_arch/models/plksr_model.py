"""PLKSRModel: BasicSR's SRModel plus what PLKSR training needs (AMP, channels_last, any torch.optim optimizer).

Option keys (top level): `use_amp` (bool, as in the official option files), `amp_dtype` (`auto` | `fp16` | `bf16`;
`auto` = fp16 on CUDA, bf16 on CPU), `channels_last` (bool), `val.use_amp` (bool: run validation/testing under
autocast too; metrics are computed in fp32 otherwise). EMA is BasicSR's `train.ema_decay`.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict

import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from torch.nn.parallel import DistributedDataParallel

from ..options import resolve_num_gpu

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def cpu_supports_bf16() -> bool:
    """Whether oneDNN reports native bf16 (AVX512-BF16 / AMX) on this CPU."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_dtype(device: torch.device, requested: str, log: logging.Logger) -> torch.dtype:
    """The autocast dtype for `requested` (auto | fp16 | bf16) on `device`; fp16 on CPU becomes bf16 (logged)."""
    if device.type == "cuda":
        if requested == "bf16" and not torch.cuda.is_bf16_supported():
            raise ValueError("amp_dtype: bf16 is not supported by this GPU; use fp16")
        return _DTYPES.get(requested, torch.float16)
    if requested == "fp16":
        log.info("amp_dtype: fp16 runs as bf16 on the CPU (fp16 autocast on CPU is slow and needs a grad scaler)")
    if not cpu_supports_bf16():
        log.warning("this CPU has no native bf16: bf16 autocast will be slow; consider use_amp: false")
    return torch.bfloat16


class PLKSRModel(SRModel):
    """SRModel with automatic mixed precision, channels_last and torch.optim optimizers; CPU-friendly."""

    def __init__(self, opt: dict) -> None:
        resolve_num_gpu(opt)
        self.channels_last = bool(opt.get("channels_last", False))
        super().__init__(opt)
        log = get_root_logger()
        self.use_amp = bool(opt.get("use_amp", False))
        self.val_amp = bool(opt.get("val", {}).get("use_amp", False))
        self.amp_dtype: torch.dtype | None = None
        if self.use_amp or self.val_amp:
            self.amp_dtype = autocast_dtype(self.device, opt.get("amp_dtype", "auto"), log)
            log.info(f"Automatic mixed precision: {self.amp_dtype} on {self.device.type}")
        # fp16 needs loss scaling against gradient underflow; bf16 has fp32's range and does not.
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self.amp_dtype == torch.float16 and self.device.type == "cuda"
        )

    def print_network(self, net: torch.nn.Module) -> None:
        """One summary line at INFO (BasicSR logs the whole module tree, hundreds of lines); the tree at DEBUG."""
        net = self.get_bare_model(net)
        n_params = sum(p.numel() for p in net.parameters())
        log = get_root_logger()
        log.info(f"Network: {net.__class__.__name__} {self.opt['network_g']}, with parameters: {n_params:,d}")
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
        super().init_training_settings()
        if self.channels_last and hasattr(self, "net_g_ema"):
            self.net_g_ema.to(memory_format=torch.channels_last)

    def get_optimizer(self, optim_type: str, params, lr: float, **kwargs) -> torch.optim.Optimizer:
        """Any optimizer in torch.optim by name (Adam, AdamW, ...)."""
        cls = getattr(torch.optim, optim_type, None)
        if not isinstance(cls, type) or not issubclass(cls, torch.optim.Optimizer):
            raise ValueError(f"train.optim_g.type: {optim_type!r} is not an optimizer in torch.optim")
        return cls(params, lr, **kwargs)

    def _autocast(self, enabled: bool) -> contextlib.AbstractContextManager:
        if not enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def feed_data(self, data: dict) -> None:
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        self.lq = data["lq"].to(self.device, memory_format=fmt)
        if "gt" in data:
            self.gt = data["gt"].to(self.device, memory_format=fmt)

    def optimize_parameters(self, current_iter: int) -> None:
        self.optimizer_g.zero_grad(set_to_none=True)
        with self._autocast(self.use_amp):
            self.output = self.net_g(self.lq)
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
        l_total = sum(loss_dict.values())
        self.scaler.scale(l_total).backward()
        self.scaler.step(self.optimizer_g)
        self.scaler.update()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def test(self) -> None:
        net = getattr(self, "net_g_ema", self.net_g)
        was_training = net.training
        net.eval()
        with torch.no_grad(), self._autocast(self.val_amp):
            self.output = net(self.lq).float()
        net.train(was_training)
