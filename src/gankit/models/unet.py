"""pix2pix's networks (Isola et al. 2017) for paired translation: a U-Net generator and a PatchGAN
discriminator that judges the input and the output together.

G: `model.depth` strided 4x4 convs halve the image down to the bottleneck (channels width, 2x, 4x, then
8x width), transposed convs double it back, each concatenated with the encoder's features of the same
size (the skips), tanh out. Normalisation where pix2pix has it (none on the outermost and innermost
down convs), per image: instance norm with a learned scale and shift, which is what pix2pix's batch
norm computes at its batch size of 1, in training and (pix2pix keeps it in training mode) at test
time. Dropout 0.5, in training only, where pix2pix has it: in the decoder blocks between the bottleneck and the
fourth halving (three at 256 px, none at 32).
D: PatchGAN: strided 4x4 convs (up to 3, fewer for small images), one 4x4 conv at stride 1, a one-channel
4x4 conv: a map of logits, one per overlapping patch (70x70 pixels at 3 strided convs).

Inference (`translation.py`): eval mode, so dropout is off; normalisation is the same per-image
computation as in training (no running statistics: what the report's grids show, from the same G_ema,
is what `translate` gives). An image of any size (a multiple of 2**depth; `translation.translate_tensor`
pads) translates; in tiles, each norm's statistics are first gathered over the whole image
(`InstanceNorm.fixed` / `.gather`), so tiles with enough context give the whole image's result.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError
from .layers import SeededDropout, initialise, sn, weight_of
from .registry import Spec, register_arch

MAX_DOUBLINGS = 3  # channels at most 8 x width
FIRST_DROPOUT = 4  # dropout in the decoder blocks from this halving up to the one next to the bottleneck (pix2pix: 3 at 256 px, none at 32)


class InstanceNorm(nn.Module):
    """Each image's channels normalised by their own mean and variance, then a learned scale and shift.

    For tiled inference the statistics can come from outside: `fixed` = (mean, var) [N, C, 1, 1] replaces
    them, and `gather(x)`, when set, sees this layer's input first (`translation.translate_tensor` sums the
    part of each tile it owns, to get the whole image's statistics one layer at a time)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.fixed: tuple[torch.Tensor, torch.Tensor] | None = None
        self.gather = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gather is not None:
            self.gather(x)
        xf = x.float()
        if self.fixed is None:
            var, mean = torch.var_mean(xf, dim=(2, 3), keepdim=True, correction=0)
        else:
            mean, var = self.fixed
        y = (xf - mean) * torch.rsqrt(var + self.eps) * self.weight[:, None, None] + self.bias[:, None, None]
        return y.to(x.dtype)


def _init(m: nn.Module) -> None:
    """pix2pix's initialisation: N(0, 0.02) weights, normalisation gains N(1, 0.02), zero biases."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(weight_of(m), 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, InstanceNorm)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def check_unet(depth: int, shape: tuple[int, ...]) -> None:
    """The training images must halve `depth` times."""
    h, w = shape[-2:]
    if min(h, w) < 8:
        raise ConfigError(f"data.resolution: translation needs images of at least 8x8, got {w}x{h}")
    if depth < 1 or depth > 10:
        raise ConfigError(f"model.depth: the U-Net halves the image depth times; give 1..10, got {depth}")
    if h % 2**depth or w % 2**depth:
        raise ConfigError(f"model.depth: {w}x{h} images do not halve {depth} times (each side must divide by {2**depth}); "
                          f"lower model.depth to {max(1, min(_twos(h), _twos(w)))} or set data.resolution")


def _twos(n: int) -> int:
    return (n & -n).bit_length() - 1  # how many times n halves


class UNet(nn.Module):
    def __init__(self, spec: Spec):
        super().__init__()
        d, w = spec.depth, spec.width
        self.in_channels, self.out_channels, self.depth = spec.in_channels, spec.shape[0], d
        self.z_dim, self.num_classes = spec.z_dim, 0
        ch = [w * 2 ** min(i, MAX_DOUBLINGS) for i in range(d)]  # the encoder's channels at each halving
        self.down = nn.ModuleList()
        for i in range(d):
            inner, outer = i == d - 1, i == 0
            conv = sn(nn.Conv2d(self.in_channels if outer else ch[i - 1], ch[i], 4, 2, 1, bias=False), spec.sn_g)  # (pix2pix: none)
            layers = ([] if outer else [nn.LeakyReLU(0.2)]) + [conv] + ([] if inner or outer else [InstanceNorm(ch[i])])
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in range(d):
            inner, outer = i == d - 1, i == 0
            c_in = ch[i] if inner else 2 * ch[i]
            if outer:
                layers = [nn.ReLU(), sn(nn.ConvTranspose2d(c_in, self.out_channels, 4, 2, 1), spec.sn_g), nn.Tanh()]
            else:
                layers = [nn.ReLU(), sn(nn.ConvTranspose2d(c_in, ch[i - 1], 4, 2, 1, bias=False), spec.sn_g), InstanceNorm(ch[i - 1])]
                if FIRST_DROPOUT <= i < d - 1:  # pix2pix's blocks at 8 x width between the bottleneck and the 4th halving
                    layers.append(SeededDropout(0.5))
            self.up.append(nn.Sequential(*layers))
        initialise(self, _init)

    @property
    def multiple(self) -> int:
        """Image sides must divide by this."""
        return 2**self.depth

    @property
    def context(self) -> int:
        """Pixels of context on each side beyond which an output pixel depends on nothing: the
        encoder's reach (3 * 2**depth - 2 pixels on one side, measured from the input's gradient in
        tests/test_translation.py), rounded up to a multiple of `multiple`."""
        return 3 * self.multiple

    def forward(self, a: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        skips = []
        h = a
        for down in self.down:
            h = down(h)
            skips.append(h)
        for i in reversed(range(self.depth)):
            if i < self.depth - 1:
                h = torch.cat([skips[i], h], 1)  # (the skip first, as pix2pix concatenates)
            h = self.up[i](h)
        return h


class PatchGAN(nn.Module):
    """`channels`: what it judges (default: input and output concatenated, pix2pix's conditional D;
    CycleGAN's judge one domain's images alone)."""

    def __init__(self, spec: Spec, out_dim: int = 1, channels: int | None = None):
        super().__init__()
        w = spec.width
        side = min(spec.shape[-2:])
        n = max(1, min(3, int(math.log2(side)) - 2))  # strided convs; the map stays at least 2x2
        norm = (lambda c: nn.BatchNorm2d(c)) if spec.bn_d else (lambda c: nn.Identity())
        c_in = channels or spec.in_channels + spec.shape[0]
        layers: list[nn.Module] = [sn(nn.Conv2d(c_in, w, 4, 2, 1), spec.sn_d), nn.LeakyReLU(0.2)]
        c = w
        for k in range(1, n + 1):
            nxt = w * 2 ** min(k, MAX_DOUBLINGS)
            stride = 2 if k < n else 1
            layers += [sn(nn.Conv2d(c, nxt, 4, stride, 1, bias=not spec.bn_d), spec.sn_d), norm(nxt), nn.LeakyReLU(0.2)]
            c = nxt
        layers.append(sn(nn.Conv2d(c, out_dim, 4, 1, 1), spec.sn_d))
        self.net = nn.Sequential(*layers)
        initialise(self, _init)

    def forward(self, ab: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [N, 1, h, w], one per patch, for inputs and outputs concatenated along channels."""
        return self.net(ab)


register_arch("unet", "pairs", conditional=False, check=check_unet)((UNet, PatchGAN))
