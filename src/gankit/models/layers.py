"""Building blocks shared by the architecture files."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm


def sn(module: nn.Module, on: bool) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) when `on`."""
    return spectral_norm(module) if on else module


def weight_of(m: nn.Module) -> torch.Tensor:
    """The weight an initialiser writes: under spectral norm its unnormalised original (`m.weight` is
    then computed from it on each access, so writing into it changes a copy and nothing else)."""
    return m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight


def initialise(net: nn.Module, init: Callable[[nn.Module], None]) -> None:
    """`init` on every submodule (writing through `weight_of`), then spectral norm's power-iteration
    vectors estimated again for the weights as initialised (they were estimated when the layer was
    wrapped, for the weights PyTorch had drawn)."""
    net.apply(init)
    with torch.no_grad():
        for m in net.modules():
            if parametrize.is_parametrized(m, "weight"):
                for p in m.parametrizations.weight:
                    if hasattr(p, "_power_method"):  # torch's _SpectralNorm (it runs 15 when it wraps a layer: a few % off)
                        p._power_method(p._reshape_weight_to_matrix(m.parametrizations.weight.original), 50)


def input_layer(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """D's input layer `layer(x)`, in float32 even under bf16 autocast.

    Precision: on a trained demo checkpoint this layer's weight gradient came out of bf16 with
    a 17% relative error (3% when the layer runs in fp32); the layer is a small share of the
    arithmetic. Speed: on a CPU a one-channel conv is computed as unfold + matmul, 2-3x
    faster here than the library's direct convolution for one input channel (measured on this
    2-core machine; equal results to rounding).
    """
    dev = x.device.type
    with torch.autocast(dev, enabled=False):
        x = x.float()
        if (dev == "cpu" and isinstance(layer, nn.Conv2d) and layer.in_channels == 1 and layer.groups == 1
                and layer.dilation == (1, 1) and layer.padding_mode == "zeros" and isinstance(layer.padding, tuple)):
            return _conv_as_matmul(layer, x)
        return layer(x)


def _conv_as_matmul(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    cols = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw)).transpose(1, 2).reshape(n * ho * wo, -1)
    weight = conv.weight.reshape(conv.out_channels, -1).t()
    y = cols @ weight if conv.bias is None else torch.addmm(conv.bias, cols, weight)
    return y.view(n, ho, wo, -1).permute(0, 3, 1, 2)  # NCHW, laid out channels_last


def fir_resample(x: torch.Tensor, up: bool) -> torch.Tensor:
    """Resampling by 2 with the [1, 3, 3, 1] low-pass filter (R3GAN's and StyleGAN2's; separable,
    summing to 1 per output pixel inside the image) and zero padding, as a depthwise (transposed)
    convolution. Inside the image it equals bilinear resampling (antialiased when down); at the
    borders the zero padding darkens, as in the authors' code (`benchmarks/parity/`). In float32:
    the CPU's bf16 depthwise convolution is 2-8x slower than float32's (measured here)."""
    c, dtype = x.shape[1], x.dtype
    with torch.autocast(x.device.type, enabled=False):
        x = x.float()
        k1 = x.new_tensor([1.0, 3.0, 3.0, 1.0])
        k = (k1[:, None] * k1[None] / 64).expand(c, 1, 4, 4)
        if up:
            y = F.conv_transpose2d(x, 4 * k, stride=2, padding=1, groups=c)
        else:
            y = F.conv2d(x, k, stride=2, padding=1, groups=c)
    return y.to(dtype)


def class_embedding(embed: nn.Embedding, y: torch.Tensor) -> torch.Tensor:
    """`embed(y)` for integer labels [N]; for float class weights [N, K] (one-hot, or a blend of
    classes) their weighted sum of rows, which equals the lookup exactly for one-hot rows. The float
    form is what an exported generator takes (no int64 inputs in the browser)."""
    return y.to(embed.weight.dtype) @ embed.weight if y.is_floating_point() else embed(y)


class CondBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift come from the class label (conditional BN)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        self.num_classes = num_classes
        if num_classes:
            self.gamma = nn.Embedding(num_classes, channels)
            self.beta = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gamma.weight)
            nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.bn(x)
        if not self.num_classes:
            return h
        return class_embedding(self.gamma, y)[:, :, None, None] * h + class_embedding(self.beta, y)[:, :, None, None]


class Projection(nn.Module):
    """Projection discriminator head (Miyato & Koyama 2018): linear(h) + <embed(y), h>."""

    def __init__(self, features: int, num_classes: int, out_dim: int, use_sn: bool):
        super().__init__()
        self.linear = sn(nn.Linear(features, out_dim), use_sn)
        self.embed = sn(nn.Embedding(num_classes, features), use_sn) if num_classes else None

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        out = self.linear(h)  # [N, out_dim]
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(1, keepdim=True)
        return out.squeeze(1) if out.shape[1] == 1 else out


def assert_shape(x: torch.Tensor, expected: tuple[int | None, ...], what: str) -> None:
    """Raise with what was got and what was expected (None matches any size)."""
    if x.dim() != len(expected) or any(e is not None and s != e for s, e in zip(x.shape, expected)):
        raise ValueError(f"{what}: expected shape {expected}, got {tuple(x.shape)}")


def noise_draw(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Training noise for a noise input (StyleGAN2, FastGAN): [N, 1, H, W] standard normal, from the
    global RNG, or while `per_sample_noise` is in effect one draw per sample from that sample's seed
    (plus the layer's index): a sample of the global batch then gets the same noise on any number of
    processes."""
    seeds = getattr(module, "noise_seeds", None)
    if seeds is None:
        return torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
    if len(seeds) != x.shape[0]:
        raise ValueError(f"per_sample_noise: {len(seeds)} seeds for a batch of {x.shape[0]}")
    salt = module.noise_salt
    noise = [torch.randn(1, x.shape[2], x.shape[3], generator=torch.Generator().manual_seed(s + salt)) for s in seeds.tolist()]
    return torch.stack(noise).to(x.device, x.dtype)


def fixed_noise(module: nn.Module, x: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
    """Inference noise for a noise input: its fixed draw `const` [H, W] (deterministic samples), or the
    maps [N, 1, H, W] a projection optimises while `given_noise` is in effect."""
    given = getattr(module, "noise_given", None)
    return const.to(x.dtype)[None, None] if given is None else given.to(x.dtype)


@contextmanager
def given_noise(layers: list[nn.Module], maps: list[torch.Tensor]) -> Iterator[None]:
    """G's noise inputs `layers` (`noise_inputs(G)`, those with a fixed draw) use `maps` in eval mode."""
    for m, n in zip(layers, maps, strict=True):
        m.noise_given = n
    try:
        yield
    finally:
        for m in layers:
            m.noise_given = None


class SeededDropout(nn.Module):
    """Dropout (training only) that is one of G's noise inputs: while `per_sample_noise` is in effect each
    sample's mask comes from its seed, so a sample of the global batch is masked alike on any number of processes."""

    noise_input = True

    def __init__(self, p: float):
        super().__init__()
        self.p, self.noise_seeds, self.noise_salt = p, None, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        seeds = self.noise_seeds
        if seeds is None:
            return F.dropout(x, self.p, True)
        if len(seeds) != x.shape[0]:
            raise ValueError(f"per_sample_noise: {len(seeds)} seeds for a batch of {x.shape[0]}")
        keep = torch.stack([torch.rand(x.shape[1:], generator=torch.Generator().manual_seed(s + self.noise_salt)) >= self.p
                            for s in seeds.tolist()])
        return x * keep.to(x.device, x.dtype) / (1 - self.p)


def noise_inputs(G: nn.Module) -> list[nn.Module]:
    """G's noise inputs (modules marked `noise_input = True`), in module order."""
    return [m for m in G.modules() if getattr(m, "noise_input", False)]


@contextmanager
def per_sample_noise(layers: list[nn.Module], seeds: torch.Tensor | None) -> Iterator[None]:
    """G's noise inputs `layers` (`noise_inputs(G)`) draw each sample's noise from its seed in
    `seeds` [N] (None: the global RNG); each layer adds its index to the seed, so layers differ."""
    for i, m in enumerate(layers):
        m.noise_seeds, m.noise_salt = seeds, i
    try:
        yield
    finally:
        for m in layers:
            m.noise_seeds = None


@contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """`modules` in eval mode inside the block, each back in its own mode after it (an error included)."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, was in zip(modules, modes):
            m.train(was)
