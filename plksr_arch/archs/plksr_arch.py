"""PLKSR: Partial Large Kernel CNNs for Efficient Super-Resolution (Lee, Yun, Ro; arXiv 2404.11848).

Reads top-down: channel mixers (CCM/ICCM/DCCM) -> partial large-kernel convolutions (PLKC and its ablation
variants) -> Element-wise Attention (EA) -> PLKBlock -> PLKSR -> named presets. Parameter names follow the official
implementation (typo `channe_mixer` included) so released checkpoints load with `strict=True`.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

CCMType = Literal["CCM", "ICCM", "DCCM"]
LKType = Literal["PLK", "SparsePLK", "RectSparsePLK"]
CCM_TYPES: tuple[str, ...] = ("CCM", "ICCM", "DCCM")
LK_TYPES: tuple[str, ...] = ("PLK", "SparsePLK", "RectSparsePLK")


def trunc_normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> None:
    """Fill `tensor` from N(mean, std^2) truncated to [a, b] by the inverse CDF: one uniform draw per element,
    mapped through `erfinv`, then clamped.

    This is the sampler of `basicsr.archs.arch_util.trunc_normal_`, which the official PLKSR code uses; recent
    `torch.nn.init.trunc_normal_` samples by rejection and so draws other values from the same seed. Matching it
    (and the order in which modules are built) gives the official code's initial weights seed for seed.
    """

    def cdf(x: float) -> float:
        return (1.0 + math.erf((x - mean) / std / math.sqrt(2.0))) / 2.0

    with torch.no_grad():
        tensor.uniform_(2 * cdf(a) - 1, 2 * cdf(b) - 1)
        tensor.erfinv_()
        tensor.mul_(std * math.sqrt(2.0))
        tensor.add_(mean)
        tensor.clamp_(min=a, max=b)


def _init_weight(conv: nn.Conv2d) -> None:
    """The official initialisation: truncated normal (std 0.02) on the weight, PyTorch's default bias."""
    trunc_normal_(conv.weight, std=0.02)


def store_hyperparameters(init: Callable[..., None]) -> Callable[..., None]:
    """Decorate a network's `__init__` so that every instance keeps its constructor keywords, defaults filled in, in
    `self.hyperparameters`: saving, variant detection and inference read them instead of re-deriving them."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        init(self, *args, **kwargs)
        self.hyperparameters = {k: v for k, v in bound.arguments.items() if k != "self"}

    return wrapper


def _identity_kernel(channels: int, size: int, like: torch.Tensor) -> torch.Tensor:
    """A `channels x channels x size x size` kernel whose convolution is the identity (odd `size`)."""
    kernel = torch.zeros(channels, channels, size, size, dtype=like.dtype, device=like.device)
    kernel[torch.arange(channels), torch.arange(channels), size // 2, size // 2] = 1.0
    return kernel


def inference_inplace() -> bool:
    """Whether layers may overwrite their own fresh intermediate results (the official PLKC memory trick, extended
    to the activations, EA and the block residual): inference without autograd, outside tracing and compilation,
    whose graphs must be free of in-place writes. Values are identical either way; in place, a PLKSR x4 HD pass in
    fp32 took 4.79 s against 5.32 s (AVX2-only EPYC, best of 5, interleaved), by fewer fresh 15-30 MB maps."""
    return not (torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling())


class GELU(nn.GELU):
    """GELU that overwrites its input under `inference_inplace()`: used where the input is a conv's fresh output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if inference_inplace():
            return torch.ops.aten.gelu_(x, approximate=self.approximate)
        return super().forward(x)


def residual(x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """`x + branch`, summed into `branch` (a block's fresh output) under `inference_inplace()` when dtypes agree."""
    if inference_inplace() and branch.dtype == x.dtype:
        return branch.add_(x)
    return x + branch


class CCM(nn.Sequential):
    """Convolutional Channel Mixer (CCM): 3x3 conv to 2*dim, GELU, 1x1 conv back to dim."""

    def __init__(self, dim: int) -> None:
        super().__init__(nn.Conv2d(dim, dim * 2, 3, 1, 1), GELU(), nn.Conv2d(dim * 2, dim, 1, 1, 0))
        _init_weight(self[-1])


class ICCM(nn.Sequential):
    """Inverted Convolutional Channel Mixer (ICCM): 1x1 conv to 2*dim, GELU, 3x3 conv back to dim."""

    def __init__(self, dim: int) -> None:
        super().__init__(nn.Conv2d(dim, dim * 2, 1, 1, 0), GELU(), nn.Conv2d(dim * 2, dim, 3, 1, 1))
        _init_weight(self[-1])


class DCCM(nn.Sequential):
    """Doubled Convolutional Channel Mixer (DCCM): 3x3 conv to 2*dim, GELU, 3x3 conv back to dim."""

    def __init__(self, dim: int) -> None:
        super().__init__(nn.Conv2d(dim, dim * 2, 3, 1, 1), GELU(), nn.Conv2d(dim * 2, dim, 3, 1, 1))
        _init_weight(self[-1])


_MIXERS: dict[str, type[nn.Sequential]] = {"CCM": CCM, "ICCM": ICCM, "DCCM": DCCM}


class _PartialConv(nn.Module):
    """Applies `large_kernel` to the first `pdim` channels and passes the others through.

    With autograd recording (training, or eval with gradients on), and while being traced or compiled (ONNX, Core
    ML, torch.compile: graphs without in-place writes), the result is built by split + concat. Otherwise
    (`inference_inplace`) it is written into the input tensor in place, the official memory trick: the input is
    always the channel mixer's fresh output, never a tensor the caller keeps. Both paths give identical values.
    """

    def __init__(self, pdim: int) -> None:
        super().__init__()
        self.idx = pdim

    def large_kernel(self, x1: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not inference_inplace():
            return torch.cat([self.large_kernel(x[:, : self.idx]), x[:, self.idx :]], dim=1)
        x[:, : self.idx] = self.large_kernel(x[:, : self.idx])
        return x


class PLKConv2d(_PartialConv):
    """Partial Large Kernel Convolution (PLKC): one dense k x k conv on the first `pdim` channels."""

    def __init__(self, pdim: int, kernel_size: int, with_idt: bool = False) -> None:
        super().__init__(pdim)
        self.with_idt = with_idt
        self.conv = nn.Conv2d(pdim, pdim, kernel_size, 1, kernel_size // 2)
        _init_weight(self.conv)

    def large_kernel(self, x1: torch.Tensor) -> torch.Tensor:
        return self.conv(x1) + x1 if self.with_idt else self.conv(x1)

    @torch.no_grad()
    def convert(self) -> None:
        """Fold the identity branch into the kernel (no-op without `with_idt`)."""
        if self.with_idt:
            w = self.conv.weight
            w.add_(_identity_kernel(w.size(0), w.size(2), w))
            self.with_idt = False


class SparsePLKConv2d(_PartialConv):
    """Sparse PLKC (ablation, RepLKNet/UniRepLKNet style): parallel dilated convs, re-parameterisable to one PLKC.

    `convs[i]` is a dense pdim->pdim conv of size `sparse_kernels[i]` and dilation `sparse_dilations[i]`; with
    `use_max_kernel` one more dense `k_max x k_max` conv follows, `k_max = max(kernel_size, (k_i - 1) * d_i + 1)`.
    `convert()` merges them (and the identity) into one `conv` of size `k_max`, the key layout of PLKConv2d.
    """

    def __init__(
        self,
        pdim: int,
        kernel_size: int,
        sparse_kernels: Sequence[int],
        sparse_dilations: Sequence[int],
        use_max_kernel: bool,
        with_idt: bool,
    ) -> None:
        super().__init__(pdim)
        self.with_idt = with_idt
        pairs = list(zip(sparse_kernels, sparse_dilations, strict=True))
        self.max_kernel_size = max([kernel_size] + [(k - 1) * d + 1 for k, d in pairs])
        convs = [nn.Conv2d(pdim, pdim, k, 1, (k // 2) * d, dilation=d) for k, d in pairs]
        if use_max_kernel:
            convs.append(nn.Conv2d(pdim, pdim, self.max_kernel_size, 1, self.max_kernel_size // 2))
        self.convs: nn.ModuleList | None = nn.ModuleList(convs)
        for conv in convs:
            _init_weight(conv)
        self.conv: nn.Conv2d | None = None

    def large_kernel(self, x1: torch.Tensor) -> torch.Tensor:
        if self.convs is None:
            return self.conv(x1)
        out = sum(conv(x1) for conv in self.convs)
        return out + x1 if self.with_idt else out

    @torch.no_grad()
    def convert(self) -> None:
        """Merge the parallel (dilated) convs and the identity into one dense `conv` of size `k_max`."""
        if self.convs is None:
            return
        size = self.max_kernel_size
        first = self.convs[0].weight
        weight = torch.zeros(first.size(0), first.size(1), size, size, dtype=first.dtype, device=first.device)
        bias = torch.zeros_like(self.convs[0].bias)
        for conv in self.convs:
            d, k = conv.dilation[0], conv.kernel_size[0]
            span = (k - 1) * d + 1
            start = (size - span) // 2
            weight[:, :, start : start + span : d, start : start + span : d] += conv.weight
            bias += conv.bias
        if self.with_idt:
            weight += _identity_kernel(weight.size(0), size, weight)
        self.conv = nn.Conv2d(weight.size(1), weight.size(0), size, 1, size // 2).to(weight.device, weight.dtype)
        self.conv.weight.copy_(weight)
        self.conv.bias.copy_(bias)
        self.convs = None
        self.with_idt = False


class RectSparsePLKConv2d(_PartialConv):
    """Rectangular sparse PLKC (ablation, SLaK style): k x k/3, k/3 x k and k/3 x k/3 convs summed; no re-param."""

    def __init__(self, pdim: int, kernel_size: int) -> None:
        super().__init__(pdim)
        m, n = kernel_size, kernel_size // 3
        self.mn_conv = nn.Conv2d(pdim, pdim, (m, n), 1, (m // 2, n // 2))
        self.nm_conv = nn.Conv2d(pdim, pdim, (n, m), 1, (n // 2, m // 2))
        self.nn_conv = nn.Conv2d(pdim, pdim, (n, n), 1, (n // 2, n // 2))
        for conv in (self.mn_conv, self.nm_conv, self.nn_conv):
            _init_weight(conv)

    def large_kernel(self, x1: torch.Tensor) -> torch.Tensor:
        return self.mn_conv(x1) + self.nm_conv(x1) + self.nn_conv(x1)


class EA(nn.Module):
    """Element-wise Attention (EA): `x * sigmoid(conv3x3(x))`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1), nn.Sigmoid())
        _init_weight(self.f[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not inference_inplace():
            return x * self.f(x)
        gate = self.f[0](x).sigmoid_()  # the conv's fresh output, overwritten
        return gate.mul_(x) if gate.dtype == x.dtype else x * gate


class PLKBlock(nn.Module):
    """PLK block: `x + refine(EA(PLKC(channel_mixer(x))))`."""

    def __init__(
        self,
        dim: int,
        ccm_type: CCMType,
        kernel_size: int,
        split_ratio: float,
        lk_type: LKType = "PLK",
        use_max_kernel: bool = False,
        sparse_kernels: Sequence[int] = (5, 5, 5, 5),
        sparse_dilations: Sequence[int] = (1, 2, 3, 4),
        with_idt: bool = False,
        use_ea: bool = True,
    ) -> None:
        super().__init__()
        self.channe_mixer = _MIXERS[ccm_type](dim)
        pdim = int(dim * split_ratio)
        if lk_type == "PLK":
            self.lk: _PartialConv = PLKConv2d(pdim, kernel_size, with_idt)
        elif lk_type == "SparsePLK":
            self.lk = SparsePLKConv2d(pdim, kernel_size, sparse_kernels, sparse_dilations, use_max_kernel, with_idt)
        else:
            self.lk = RectSparsePLKConv2d(pdim, kernel_size)
        self.attn = EA(dim) if use_ea else nn.Identity()
        self.refine = nn.Conv2d(dim, dim, 1, 1, 0)
        _init_weight(self.refine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return residual(x, self.refine(self.attn(self.lk(self.channe_mixer(x)))))


def _repeat_channels(x: torch.Tensor, n: int) -> torch.Tensor:
    """`repeat_interleave(x, n, dim=1)` of a 3-channel image as a 1x1 convolution with a constant 0/1 kernel: exact
    in fp32 and fp16, and for Core ML a plain `conv` (no shape computations, which Core ML runs on the CPU)."""
    kernel = torch.eye(3, dtype=x.dtype, device=x.device).repeat_interleave(n, dim=0)
    return F.conv2d(x, kernel[:, :, None, None])


Check = tuple[str, Any, Callable[[], bool], str]  # (argument, value, valid?, what is expected)


def _is_int(value: object, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def shared_checks(dim: Any, n_blocks: Any, upscaling_factor: Any, kernel_size: Any, split_ratio: Any) -> list[Check]:
    """The argument checks PLKSR and RealPLKSR share, in an order where later checks may rely on earlier ones."""
    return [
        ("dim", dim, lambda: _is_int(dim, 1), "a positive int"),
        ("n_blocks", n_blocks, lambda: _is_int(n_blocks, 0), "an int >= 0"),
        ("upscaling_factor", upscaling_factor, lambda: _is_int(upscaling_factor, 1), "an int >= 1"),
        ("kernel_size", kernel_size, lambda: _is_int(kernel_size, 1) and kernel_size % 2, "a positive odd int"),
        (
            "split_ratio",
            split_ratio,
            lambda: isinstance(split_ratio, (int, float)) and int(dim * split_ratio) >= 1 and split_ratio <= 1,
            f"in (0, 1] with int(dim * split_ratio) >= 1 (dim={dim})",
        ),
    ]


def validate(network: str, checks: list[Check]) -> None:
    """Raise ValueError naming the first invalid argument."""
    for name, value, valid, expected in checks:
        if not valid():
            raise ValueError(f"{network}: {name}={value!r} is invalid, expected {expected}")


class GlobalSkipSR(nn.Module):
    """What PLKSR and RealPLKSR share: `to_img(feats(x) + skip(x))` where the skip repeats the input s^2 times along
    channels (a nearest-neighbour upsample after the pixel shuffle). Subclasses build `feats` and `to_img` and set
    `upscaling_factor`, `is_coreml` and `hyperparameters`."""

    hyperparameters: dict[str, Any]
    feats: nn.Sequential
    to_img: nn.Module
    upscaling_factor: int
    is_coreml: bool = False

    def _skip(self, x: torch.Tensor) -> torch.Tensor:
        """The global skip: the input repeated s^2 times along channels (nearest-neighbour after the shuffle)."""
        n = self.upscaling_factor**2
        return _repeat_channels(x, n) if self.is_coreml else torch.repeat_interleave(x, n, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_img(self.feats(x) + self._skip(x))

    def mixed_forward(self, x: torch.Tensor, body_dtype: torch.dtype | None) -> torch.Tensor:
        """`forward` with the body (`feats`) under `body_dtype` autocast and the global skip, its addition and the
        upsampler in fp32, so low precision only touches the predicted residual; fp32 out (None: plain fp32)."""
        with torch.autocast(x.device.type, dtype=body_dtype, enabled=body_dtype is not None):
            features = self.feats(x)
        return self.to_img(features.float() + self._skip(x.float()))

    def activation_bytes_per_pixel(self, element_size: int) -> int:
        """Peak bytes per LR pixel of an inference pass whose body keeps `element_size`-byte activations, with a
        margin: about eight `dim`-channel maps (DCCM doubles the width) plus the fp32 input, skip and output.
        Measured with `plksr bench` (PLKSR x4, 180x320, fresh process): 1,230 B/px in bf16 and 2,436 B/px in fp32,
        against 1,600 and 2,624 from this estimate."""
        dim, scale = self.hyperparameters["dim"], self.upscaling_factor
        return int(dim * element_size * 8 + 3 * scale**2 * 4 * 3)


class PLKSR(GlobalSkipSR):
    """Partial Large Kernel CNN for efficient Super-Resolution (PLKSR).

    `feats = conv3x3(3 -> dim), PLKBlock x n_blocks, conv3x3(dim -> 3 * s * s)`; the output is
    `PixelShuffle(s)(feats(x) + repeat_interleave(x, s * s, dim=1))`, i.e. the global skip is a nearest-neighbour
    upsample of the input. Defaults are the paper's main model (PLKSR x4: DCCM, k=17, 28 blocks, dim 64, EA on).

    Args:
        dim: feature channels.
        n_blocks: number of PLK blocks.
        upscaling_factor: output scale s.
        ccm_type: channel mixer, CCM | ICCM | DCCM.
        kernel_size: large kernel size k of PLKC (odd).
        split_ratio: fraction of channels the large kernel sees (`pdim = int(dim * split_ratio)`).
        lk_type: PLK (the paper's PLKC) or the ablations SparsePLK | RectSparsePLK.
        use_max_kernel: SparsePLK only: add a dense k_max x k_max conv to the sparse ones.
        sparse_kernels: SparsePLK only: kernel size of each parallel conv.
        sparse_dilations: SparsePLK only: dilation of each parallel conv.
        with_idt: PLK/SparsePLK: add an identity branch around the large kernel (folded by `convert()`).
        use_ea: use Element-wise Attention (EA); PLKSR-tiny has it off.
        is_coreml: build the global skip from ops Core ML converts (same values).

    Every instance keeps these keywords in `hyperparameters`. `mixed_forward` runs the body in a low precision
    with the global skip in fp32; `activation_bytes_per_pixel` estimates the memory of an inference pass.
    """

    @store_hyperparameters
    def __init__(
        self,
        *,
        dim: int = 64,
        n_blocks: int = 28,
        upscaling_factor: int = 4,
        ccm_type: CCMType = "DCCM",
        kernel_size: int = 17,
        split_ratio: float = 0.25,
        lk_type: LKType = "PLK",
        use_max_kernel: bool = False,
        sparse_kernels: Sequence[int] = (5, 5, 5, 5),
        sparse_dilations: Sequence[int] = (1, 2, 3, 4),
        with_idt: bool = False,
        use_ea: bool = True,
        is_coreml: bool = False,
    ) -> None:
        super().__init__()
        checks = [
            *shared_checks(dim, n_blocks, upscaling_factor, kernel_size, split_ratio),
            ("ccm_type", ccm_type, lambda: ccm_type in CCM_TYPES, f"one of {', '.join(CCM_TYPES)}"),
            ("lk_type", lk_type, lambda: lk_type in LK_TYPES, f"one of {', '.join(LK_TYPES)}"),
            (
                "kernel_size",
                kernel_size,
                lambda: lk_type != "RectSparsePLK" or kernel_size >= 3,
                ">= 3 for RectSparsePLK",
            ),
            (
                "sparse_dilations",
                sparse_dilations,
                lambda: len(sparse_dilations) == len(sparse_kernels),
                f"as long as sparse_kernels ({len(sparse_kernels)})",
            ),
        ]
        validate("PLKSR", checks)
        self.upscaling_factor = upscaling_factor
        self.is_coreml = is_coreml
        head = nn.Conv2d(3, dim, 3, 1, 1)  # built before the blocks, as officially: same random stream
        blocks = [
            PLKBlock(
                dim,
                ccm_type,
                kernel_size,
                split_ratio,
                lk_type,
                use_max_kernel,
                sparse_kernels,
                sparse_dilations,
                with_idt,
                use_ea,
            )
            for _ in range(n_blocks)
        ]
        self.feats = nn.Sequential(head, *blocks, nn.Conv2d(dim, 3 * upscaling_factor**2, 3, 1, 1))
        _init_weight(self.feats[0])
        _init_weight(self.feats[-1])
        self.to_img = nn.PixelShuffle(upscaling_factor)

    @torch.no_grad()
    def convert(self) -> PLKSR:
        """Re-parameterise for inference: fold identities and merge sparse kernels into one PLKC per block. The
        `hyperparameters` follow, so they keep describing the network (a converted SparsePLK is a PLK of size k_max)."""
        sizes = {m.max_kernel_size for m in self.modules() if isinstance(m, SparsePLKConv2d)}
        for module in self.modules():
            if isinstance(module, (PLKConv2d, SparsePLKConv2d)):
                module.convert()
        if self.hyperparameters["lk_type"] == "SparsePLK":
            sparse = ("use_max_kernel", "sparse_kernels", "sparse_dilations")
            self.hyperparameters.update({k: v for k, v in plksr_defaults().items() if k in sparse}, lk_type="PLK")
            if sizes:
                self.hyperparameters["kernel_size"] = sizes.pop()
        self.hyperparameters["with_idt"] = False
        return self


def plksr_defaults() -> dict[str, Any]:
    """PLKSR's keyword arguments and their defaults (the paper's main model), from its signature."""
    parameters = inspect.signature(PLKSR.__init__).parameters
    return {name: p.default for name, p in parameters.items() if p.default is not p.empty}


# Released configurations (paper Sec. 4 / official option files); both use DCCM and split_ratio 0.25.
PRESETS: dict[str, dict[str, int | bool]] = {
    "PLKSR": {"dim": 64, "n_blocks": 28, "kernel_size": 17, "use_ea": True},
    "PLKSR-tiny": {"dim": 64, "n_blocks": 12, "kernel_size": 13, "use_ea": False},
}


def plksr(scale: int = 4) -> PLKSR:
    """PLKSR as released (dim 64, 28 blocks, k 17, EA)."""
    return PLKSR(upscaling_factor=scale, **PRESETS["PLKSR"])


def plksr_tiny(scale: int = 4) -> PLKSR:
    """PLKSR-tiny as released (dim 64, 12 blocks, k 13, no EA)."""
    return PLKSR(upscaling_factor=scale, **PRESETS["PLKSR-tiny"])
