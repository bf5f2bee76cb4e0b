"""A compact StyleGAN2 (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR
2020), written from the paper in plain PyTorch operations (no custom CUDA kernels):

G: a mapping network (z, plus a class embedding, to w through `MAPPING_LAYERS` equalised-lr linear
layers at a 0.01 learning-rate multiplier) and a synthesis network from a learned 4x4 constant:
at each resolution two modulated 3x3 convolutions (weights scaled per input channel by a style
from w, then demodulated to unit norm per output channel), per-pixel noise with a learned
strength, and a skip output (each resolution's toRGB added to the upsampled image so far).
Upsampling is bilinear (the paper's transposed conv with a FIR filter is replaced by this reference op).
D: residual blocks (two 3x3 convs, 2x2 average-pool downsampling, a 1x1 skip, added with
1/sqrt(2)), then minibatch standard deviation, a 3x3 conv and two linear layers (conditional:
StyleGAN2-ADA's <out, mapped label> / sqrt(dim)). Equalised learning rate everywhere; no normalisation layers.

Training extras live in the step: style mixing (`model.style_mixing`), path-length
regularisation (`loss.pl_weight`), lazy R1 (`loss.r1_every`). `w_avg`, the running mean of w, is
tracked in training; sampling truncates in W: w = w_avg + psi * (w - w_avg).
Noise is random in training and a fixed buffer in eval mode, so that sampling is deterministic.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import Spec, register_arch
from .layers import fixed_noise, input_layer, noise_draw

MAPPING_LAYERS = 4
MAPPING_LR = 0.01
SLOPE = 0.2
GAIN = math.sqrt(2)  # leaky ReLU's gain, applied after each activation (equalised lr keeps unit variance)
W_AVG_BETA = 0.995
MBSTD_GROUP = 4
D_MAPPING_LAYERS = 8  # StyleGAN2-ADA's D maps the label through the MappingNetwork's default depth


def stage_widths(spec: Spec) -> list[int]:
    """Channels per resolution from 4x4 up: `model.widths` when given, else 2 x width halving
    above 32x32 (never below width / 2)."""
    n = spec.n_up + 1
    if spec.widths:
        return list(spec.widths) * n if len(spec.widths) == 1 else list(spec.widths)
    return [max(spec.width // 2, spec.width * 2 >> max(0, i - 3)) for i in range(n)]


class EqualLinear(nn.Module):
    """Linear layer with the equalised learning rate: weights N(0, 1) / lr_mul, scaled at run time."""

    def __init__(self, c_in: int, c_out: int, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((c_out,), float(bias_init)))
        self.w_gain, self.b_gain = lr_mul / math.sqrt(c_in), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.w_gain, self.bias * self.b_gain)


class EqualConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.gain, self.pad = 1 / math.sqrt(c_in * k * k), k // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.gain, self.bias, padding=self.pad)


def _batch_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(0)


class Mapping(nn.Module):
    batch_mean = staticmethod(_batch_mean)  # of the global batch when several processes (`dist.cross_rank_means`)

    def __init__(self, z_dim: int, w_dim: int, num_classes: int):
        super().__init__()
        self.embed = EqualLinear(num_classes, w_dim) if num_classes else None  # a class embedding, as StyleGAN2-ADA
        dims = [z_dim + (w_dim if num_classes else 0)] + [w_dim] * MAPPING_LAYERS
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=MAPPING_LR) for a, b in zip(dims, dims[1:]))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        x = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)  # second-moment normalisation
        if self.embed is not None:
            onehot = y.to(z.dtype) if y.is_floating_point() else F.one_hot(y, self.embed.weight.shape[1]).to(z.dtype)
            e = self.embed(onehot)
            x = torch.cat([x, e * torch.rsqrt(e.square().mean(1, keepdim=True) + 1e-8)], 1)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), SLOPE) * GAIN
        if self.training:  # the running mean of w, for truncation
            with torch.no_grad():
                self.w_avg.copy_(self.batch_mean(x.detach().float()).lerp(self.w_avg, W_AVG_BETA))
        return x


class ModulatedConv(nn.Module):
    """Modulated (and, unless `demodulate=False`, demodulated) conv: w's style scales the input
    channels, demodulation rescales each output channel to unit expected norm. Computed as
    scale the input, one shared conv, scale the output (equal to the per-sample weights)."""

    def __init__(self, c_in: int, c_out: int, k: int, w_dim: int, demodulate: bool = True):
        super().__init__()
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.gain, self.pad, self.demodulate = 1 / math.sqrt(c_in * k * k), k // 2, demodulate

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)  # [N, C_in]
        weight = self.weight * self.gain
        x = F.conv2d(x * s[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=self.pad)
        if self.demodulate:
            d = torch.rsqrt((weight.square().sum((2, 3))[None] * s.square()[:, None, :]).sum(2) + 1e-8)  # [N, C_out]
            x = x * d[:, :, None, None].to(x.dtype)
        return x


class StyleLayer(nn.Module):
    """Modulated 3x3 conv (after 2x upsampling when `up`), noise, bias, leaky ReLU."""

    noise_input = True  # `layers.per_sample_noise` reaches it
    fixed_draw = "noise_const"  # the buffer used in eval mode (`layers.given_noise` replaces it)

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, up: bool):
        super().__init__()
        self.up = up
        self.conv = ModulatedConv(c_in, c_out, 3, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.conv(x, w)
        if self.training:  # fresh noise per sample; eval: the fixed buffer (deterministic samples)
            noise = noise_draw(self, x)
        else:
            noise = fixed_noise(self, x, self.noise_const)
        x = x + noise * self.noise_strength.to(x.dtype) + self.bias.to(x.dtype)[None, :, None, None]
        return F.leaky_relu(x, SLOPE) * GAIN


class ToRGB(nn.Module):
    def __init__(self, c_in: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv(c_in, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.to(x.dtype)[None, :, None, None]


class Generator(nn.Module):
    truncates_w = True  # sampling's truncation acts on w (`truncation=` argument), not on z

    def __init__(self, spec: Spec):
        super().__init__()
        self.z_dim, self.num_classes = spec.z_dim, spec.num_classes
        widths = stage_widths(spec)
        self.w_dim = w_dim = widths[0]
        self.mapping = Mapping(spec.z_dim, w_dim, spec.num_classes)
        self.const = nn.Parameter(torch.randn(widths[0], 4, 4))
        self.convs = nn.ModuleList([StyleLayer(widths[0], widths[0], w_dim, 4, up=False)])
        self.to_rgbs = nn.ModuleList([ToRGB(widths[0], spec.shape[0], w_dim)])
        for i in range(1, len(widths)):
            res = 4 << i
            self.convs.extend([StyleLayer(widths[i - 1], widths[i], w_dim, res, up=True), StyleLayer(widths[i], widths[i], w_dim, res, up=False)])
            self.to_rgbs.append(ToRGB(widths[i], spec.shape[0], w_dim))
        self.num_ws = len(self.convs) + 1  # each conv its own w; each toRGB shares the next conv's (the last has one of its own)

    def ws(self, z: torch.Tensor, y: torch.Tensor | None = None, truncation: float = 1.0,
           mix: tuple[torch.Tensor, int] | None = None) -> torch.Tensor:
        """The per-layer styles [N, num_ws, w_dim]; `mix` = (z2, cutoff): layers from `cutoff` on
        take z2's w (style mixing); `truncation` psi pulls w towards w_avg."""
        w = self.mapping(z, y)
        if isinstance(truncation, torch.Tensor) or truncation != 1.0:  # a tensor psi: the exported graph's input
            w = self.mapping.w_avg.to(w.dtype).lerp(w, truncation.to(w.dtype) if isinstance(truncation, torch.Tensor) else truncation)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if mix is not None and mix[1] < self.num_ws:
            z2, cutoff = mix
            ws[:, cutoff:] = self.mapping(z2, y).unsqueeze(1)
        return ws

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1).to(ws.dtype)
        x = self.convs[0](x, ws[:, 0])
        img = self.to_rgbs[0](x, ws[:, 1])
        for i, rgb in enumerate(self.to_rgbs[1:]):
            x = self.convs[2 * i + 1](x, ws[:, 2 * i + 1])
            x = self.convs[2 * i + 2](x, ws[:, 2 * i + 2])
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False) + rgb(x, ws[:, 2 * i + 3])
        return img

    def latent_weight(self) -> torch.Tensor:
        """The weights that act first on w (SeFa), as StyleGAN2 editing uses them: every style conv's
        affine map, stacked [sum of input channels, w_dim]; the toRGB layers' left out."""
        return torch.cat([layer.conv.affine.weight * layer.conv.affine.w_gain for layer in self.convs])

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, truncation: float = 1.0,
                mix: tuple[torch.Tensor, int] | None = None) -> torch.Tensor:
        # the skip outputs sum to an unbounded image; tanh-free as in StyleGAN2, clamped to the data range only when shown
        return self.synthesis(self.ws(z, y, truncation, mix))


class DBlock(nn.Module):
    """Residual D block: a 1x1 skip on the 2x2-pooled input; 3x3 conv, 2x2 pooling, 3x3 conv; summed
    with 1/sqrt(2). StyleGAN2 downsamples with its [1, 3, 3, 1] filter instead (a filtered, strided
    conv): that version matched StyleGAN2-ADA's D to 1e-6 with identical weights, but it made the
    2-process equality test drift (6e-4 of a weight's change against the 2e-4 allowed, in G's class
    embedding), so the box stays until that is understood (benchmarks/RESULTS.md)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv0 = EqualConv2d(c_in, c_in, 3)
        self.conv1 = EqualConv2d(c_in, c_out, 3)
        self.skip = EqualConv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(F.avg_pool2d(x, 2))
        x = F.leaky_relu(self.conv0(x), SLOPE) * GAIN
        x = F.leaky_relu(self.conv1(F.avg_pool2d(x, 2)), SLOPE) * GAIN
        return (skip + x) * math.sqrt(0.5)


def minibatch_std(x: torch.Tensor) -> torch.Tensor:
    """Append one channel: the standard deviation of features across groups of up to
    MBSTD_GROUP samples, averaged over features and pixels. The groups are consecutive rows (StyleGAN2
    strides them), so processes whose shares of the batch are multiples of the group form the same
    groups as one process."""
    n, c, h, w = x.shape
    g = next(k for k in (MBSTD_GROUP, 2, 1) if n % k == 0)
    y = x.float().reshape(n // g, g, c, h, w)
    y = (y - y.mean(1, keepdim=True)).square().mean(1).add(1e-8).sqrt().mean((1, 2, 3))  # [n // g]
    y = y.reshape(n // g, 1, 1, 1, 1).expand(-1, g, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], 1)


class Discriminator(nn.Module):
    def __init__(self, spec: Spec, out_dim: int = 1):
        super().__init__()
        widths = stage_widths(spec)[::-1]  # from the image's resolution down to 4x4
        self.from_rgb = EqualConv2d(spec.shape[0] * spec.pac, widths[0], 1)
        self.blocks = nn.ModuleList(DBlock(a, b) for a, b in zip(widths, widths[1:]))
        c = widths[-1]
        self.conv = EqualConv2d(c + 1, c, 3)
        self.fc = EqualLinear(c * 16, c)
        self.head = Head(c, spec.num_classes, out_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = F.leaky_relu(input_layer(self.from_rgb, x), SLOPE) * GAIN
        for block in self.blocks:
            x = block(x)
        x = F.leaky_relu(self.conv(minibatch_std(x)), SLOPE) * GAIN
        x = F.leaky_relu(self.fc(x.flatten(1)), SLOPE) * GAIN
        return self.head(x, y)


class Head(nn.Module):
    """StyleGAN2-ADA's D output: an equalised-lr linear layer to `out_dim` logits; conditional, to
    `features` values whose inner product with the mapped label, divided by sqrt(features), is the
    logit. The label map is StyleGAN2-ADA's D mapping network: an embedding, second-moment
    normalisation, then D_MAPPING_LAYERS equalised-lr layers at a 0.01 learning-rate multiplier.
    (gankit before 0.15 had a default-initialised linear layer plus <N(0, 1) embedding, h>: logits of
    std 8 at the start, almost all of them the class term, against 0.2 in StyleGAN2-ADA.)"""

    def __init__(self, features: int, num_classes: int, out_dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.out = EqualLinear(features, features if num_classes else out_dim)
        if num_classes:
            self.embed = EqualLinear(num_classes, features)
            self.mapping = nn.ModuleList(EqualLinear(features, features, lr_mul=MAPPING_LR) for _ in range(D_MAPPING_LAYERS))

    def cmap(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        onehot = y.to(dtype) if y.is_floating_point() else F.one_hot(y, self.num_classes).to(dtype)
        x = self.embed(onehot)
        x = x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)
        for layer in self.mapping:
            x = F.leaky_relu(layer(x), SLOPE) * GAIN
        return x

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        out = self.out(h)
        if self.num_classes:
            return (out * self.cmap(y, out.dtype)).sum(1) / math.sqrt(out.shape[1])
        return out.squeeze(1) if out.shape[1] == 1 else out


# model.sn_d / sn_g do not apply: equalised learning rate instead, no normalisation layers
register_arch("stylegan2", "image", (16, 32, 64, 128, 256), ("widths", "style_mixing"))((Generator, Discriminator))
