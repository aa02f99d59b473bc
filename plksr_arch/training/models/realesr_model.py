"""Real-ESRGAN's two-stage real-world recipe for PLKSR, RealPLKSR or any registered network, on any device.

`PLKSRRealESRNetModel` (stage 1: pixel loss on inputs degraded on the fly) and `PLKSRRealESRGANModel` (stage 2: pixel
+ perceptual + adversarial loss against a `UNetDiscriminatorSN`) keep the YAML keys of BasicSR's RealESRNetModel and
RealESRGANModel and add PLKSRModel's: AMP, channels_last, EMA, skipped non-finite steps, grad scalers in training
states, `net_g_best.pth`, our checkpoint loading and writing. The plain names belong to BasicSR (`..._basicsr`) and the
realesrgan package; our commands read them as ours (`training.names.FOREIGN_NAMES`), so Real-ESRGAN's option files run
with only `network_g` changed.

The degradation is BasicSR's code (the `feed_data` of its classes, called as functions on a `Degradation`); only where
tensors live differs: BasicSR builds DiffJPEG, USMSharp and the training-pair pool with `.cuda()`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict

import torch
from basicsr.models import realesrgan_model, realesrnet_model
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils import USMSharp

from plksr_arch.training import basicsr_fixes
from plksr_arch.training.basicsr_keys import (
    REAL_ESRGAN_KEYS,
    REAL_ESRNET_KEYS,
    DegradationKeys,
    ESRNetKeys,
    GANTargetKeys,
)
from plksr_arch.training.models.plksr_model import PLKSRModel


class Degradation:
    """Real-ESRGAN's second-order degradation of a RealESRGANDataset batch (GT + three kernels) on `device`: blur,
    resize, noise and JPEG twice, then resize + sinc filter; a random `gt_size` crop; the training-pair pool.

    `opt` holds the degradation keys (`basicsr_keys.DegradationKeys`), `scale` and, for `gan`, nothing more: the GAN
    variant keeps the GT and its unsharp-masked copy apart (PLKSRRealESRGANModel), the other sharpens the GT itself
    when `gt_usm` is set (PLKSRRealESRNetModel). `queue_size` 0 turns the pool off (held-out pairs).
    """

    def __init__(self, opt: dict, device: torch.device, *, gan: bool) -> None:
        self.opt, self.device, self.is_train = opt, device, True
        self.jpeger = basicsr_fixes.diff_jpeg().to(device)
        self.usm_sharpener = USMSharp().to(device)
        self.queue_size = DegradationKeys.read(opt).queue_size
        self.queue_lq: torch.Tensor | None = None
        self.queue_gt: torch.Tensor | None = None
        self.queued = 0
        model = realesrgan_model.RealESRGANModel if gan else realesrnet_model.RealESRNetModel
        self._synthesize = model.feed_data  # BasicSR's code; `self` provides what it reads

    @torch.no_grad()
    def __call__(self, data: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(GT, LQ, unsharp-masked GT for `gan` else None), float32 NCHW on `device`."""
        self._synthesize(self, data)
        gt_usm = self.__dict__.pop("gt_usm", None)
        gt, lq = self.__dict__.pop("gt"), self.__dict__.pop("lq")
        for name in ("kernel1", "kernel2", "sinc_kernel"):
            self.__dict__.pop(name, None)
        return gt, lq, gt_usm

    @torch.no_grad()
    def _dequeue_and_enqueue(self) -> None:
        """The training-pair pool BasicSR's `feed_data` calls: until `queue_size` pairs are stored, batches pass
        through and are stored; then each batch is swapped for a random stored one, so a batch mixes degradations
        drawn for different batches."""
        if not self.queue_size:
            return
        b = self.lq.size(0)
        if self.queue_size % b:
            raise ValueError(f"queue_size {self.queue_size} is not a multiple of the batch size {b}")
        if self.queue_lq is None:
            self.queue_lq = self.lq.new_zeros(self.queue_size, *self.lq.shape[1:])
            self.queue_gt = self.gt.new_zeros(self.queue_size, *self.gt.shape[1:])
        if self.queued < self.queue_size:
            self.queue_lq[self.queued : self.queued + b] = self.lq
            self.queue_gt[self.queued : self.queued + b] = self.gt
            self.queued += b
            return
        order = torch.randperm(self.queue_size, device=self.queue_lq.device)
        self.queue_lq, self.queue_gt = self.queue_lq[order], self.queue_gt[order]
        lq, gt = self.queue_lq[:b].clone(), self.queue_gt[:b].clone()
        self.queue_lq[:b], self.queue_gt[:b] = self.lq, self.gt
        self.lq, self.gt = lq, gt


def degradation_options(opt: dict, gan: bool) -> dict:
    """`opt` with the degradation keys' defaults filled in (BasicSR's code reads them with `opt[key]`)."""
    keys = [DegradationKeys, GANTargetKeys if gan else ESRNetKeys]
    return {**opt, **{k: v for kind in keys for k, v in asdict(kind.read(opt)).items()}}


class PLKSRRealESRNetModel(PLKSRModel):
    """Stage 1 of Real-ESRGAN's recipe: pixel loss on LQ synthesized on the fly from RealESRGANDataset's GT patches
    and kernels (or on pairs with `high_order_degradation: false`); validation on paired data as PLKSRModel."""

    option_keys = REAL_ESRNET_KEYS
    gan = False

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        # The GAN stage's losses compare with unsharp-masked GT, also on paired batches.
        self.usm_sharpener = USMSharp().to(self.device) if self.gan else None
        self.degradation = None
        if self.is_train and DegradationKeys.read(opt).high_order_degradation:
            self.degradation = Degradation(degradation_options(opt, self.gan), self.device, gan=self.gan)

    def feed_data(self, data: dict) -> None:
        """A RealESRGANDataset batch (it carries `kernel1`) is degraded on the device; other batches are pairs."""
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.degradation is not None and "kernel1" in data:
            gt, lq, gt_usm = self.degradation(data)
            self.gt, self.lq = gt.contiguous(memory_format=fmt), lq.contiguous(memory_format=fmt)
            if gt_usm is not None:
                self.gt_usm = gt_usm.contiguous(memory_format=fmt)
            return
        super().feed_data(data)
        if self.gan and "gt" in data:
            self.gt_usm = self.usm_sharpener(self.gt)


class PLKSRRealESRGANModel(PLKSRRealESRNetModel, SRGANModel):
    """Stage 2 of Real-ESRGAN's recipe: pixel (+ LDL) + perceptual + adversarial loss, the discriminator trained
    beside (BasicSR's SRGANModel builds it, its loss and optimizer, and saves `net_d`); the unsharp-masked GT feeds the
    losses `l1_gt_usm`, `percep_gt_usm`, `gan_gt_usm` name. Both networks run under AMP when it is on, the losses in
    fp32; each has its own grad scaler, and a non-finite step of one skips that network's update."""

    option_keys = REAL_ESRGAN_KEYS
    gan = True

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.targets = GANTargetKeys.read(opt)

    def _discriminate(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        with self._autocast(self.use_amp):
            return net(x).float()

    def optimize_parameters(self, current_iter: int) -> None:
        self.current_iter = current_iter
        self._route()
        usm = self.targets
        l1_gt = self.gt_usm if usm.l1_gt_usm else self.gt
        percep_gt = self.gt_usm if usm.percep_gt_usm else self.gt
        gan_gt = self.gt_usm if usm.gan_gt_usm else self.gt
        scaler_g, scaler_d = self.scalers

        self.optimizer_g.zero_grad(set_to_none=True)
        with self._autocast(self.use_amp):
            self.output = self.forward_g(self.lq)
        output = self.output.float()
        loss_dict: OrderedDict[str, torch.Tensor] = OrderedDict()
        skipped = False
        if current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters:
            g_terms: OrderedDict[str, torch.Tensor] = OrderedDict()
            if self.cri_pix:
                g_terms["l_g_pix"] = self.cri_pix(output, l1_gt)
            if self.cri_ldl:
                from basicsr.losses.loss_util import get_refined_artifact_map

                with torch.no_grad(), self._autocast(self.use_amp):
                    output_ema = self.net_g_ema(self.lq).float()
                weight = get_refined_artifact_map(self.gt, output, output_ema, 7)
                g_terms["l_g_ldl"] = self.cri_ldl(weight * output, weight * self.gt)
            if self.cri_perceptual:
                l_percep, l_style = self.cri_perceptual(output, percep_gt)
                if l_percep is not None:
                    g_terms["l_g_percep"] = l_percep
                if l_style is not None:
                    g_terms["l_g_style"] = l_style
            # The generator's adversarial term goes through the bare discriminator: its weights need no gradient here,
            # and a DDP wrapper would wait for the gradients of all of them.
            net_d = self.get_bare_model(self.net_d)
            net_d.requires_grad_(False)
            g_terms["l_g_gan"] = self.cri_gan(self._discriminate(net_d, self.output), True, is_disc=False)
            net_d.requires_grad_(True)
            stepped = self._step(self.optimizer_g, scaler_g, self._backward(g_terms, scaler_g, "net_g"), "net_g")
            skipped = not stepped
            if stepped and self.ema_decay > 0:
                self.model_ema(decay=self.ema_decay)
            loss_dict.update(g_terms)

        # Real and fake pass the (DDP) discriminator in separate forward/backward pairs, as in BasicSR.
        self.optimizer_d.zero_grad(set_to_none=True)
        real_pred = self._discriminate(self.net_d, gan_gt)
        real = {"l_d_real": self.cri_gan(real_pred, True, is_disc=True)}
        ok = self._backward(real, scaler_d, "net_d")
        fake_pred = self._discriminate(self.net_d, self.output.detach())
        fake = {"l_d_fake": self.cri_gan(fake_pred, False, is_disc=True)}
        ok = self._backward(fake, scaler_d, "net_d") and ok
        skipped = not self._step(self.optimizer_d, scaler_d, ok, "net_d") or skipped
        loss_dict.update(real)
        loss_dict["out_d_real"] = real_pred.detach().mean()
        loss_dict.update(fake)
        loss_dict["out_d_fake"] = fake_pred.detach().mean()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        self._count_skips(skipped)
