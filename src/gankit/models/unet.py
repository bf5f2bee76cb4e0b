"""pix2pix's networks (Isola et al. 2017) for paired translation: a U-Net generator and a PatchGAN
discriminator that judges the input and the output together.

G: `model.depth` strided 4x4 convs halve the image down to the bottleneck (channels width, 2x, 4x, then
8x width), transposed convs double it back, each concatenated with the encoder's features of the same
size (the skips), tanh out. Batch norm as in pix2pix, none on the outermost and innermost down convs;
dropout 0.5 in the three decoder blocks next to the bottleneck, in training only.
D: PatchGAN: strided 4x4 convs (up to 3, fewer for small images), one 4x4 conv at stride 1, a one-channel
4x4 conv: a map of logits, one per overlapping patch (70x70 pixels at 3 strided convs).

Inference (`translation.py`): eval mode, so dropout is off and batch norm uses the statistics that
were recomputed for G_ema over training inputs (`run.recalibrated_ema`), the same network the report's
grids show. Every layer is local (convolutions, per-channel affine maps), so an image of any size
(a multiple of 2**depth; `translation.translate` pads) translates, and in tiles with enough context
exactly as whole.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError
from .layers import SeededDropout, sn
from .registry import Spec, register_arch

MAX_DOUBLINGS = 3  # channels at most 8 x width
DROPOUT_BLOCKS = 3  # decoder blocks next to the bottleneck with dropout (pix2pix: 3 at 256 px)


def _init(m: nn.Module) -> None:
    """pix2pix's initialisation: N(0, 0.02) weights, batch-norm gains N(1, 0.02), zero biases."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
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
            conv = sn(nn.Conv2d(self.in_channels if outer else ch[i - 1], ch[i], 4, 2, 1, bias=inner or outer), spec.sn_g)
            layers = ([] if outer else [nn.LeakyReLU(0.2)]) + [conv] + ([] if inner or outer else [nn.BatchNorm2d(ch[i])])
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in range(d):
            inner, outer = i == d - 1, i == 0
            c_in = ch[i] if inner else 2 * ch[i]
            if outer:
                layers = [nn.ReLU(), sn(nn.ConvTranspose2d(c_in, self.out_channels, 4, 2, 1), spec.sn_g), nn.Tanh()]
            else:
                layers = [nn.ReLU(), sn(nn.ConvTranspose2d(c_in, ch[i - 1], 4, 2, 1, bias=False), spec.sn_g), nn.BatchNorm2d(ch[i - 1])]
                if d - 1 - DROPOUT_BLOCKS <= i < d - 1:
                    layers.append(SeededDropout(0.5))
            self.up.append(nn.Sequential(*layers))
        self.apply(_init)

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
                h = torch.cat([h, skips[i]], 1)
            h = self.up[i](h)
        return h


class PatchGAN(nn.Module):
    def __init__(self, spec: Spec, out_dim: int = 1):
        super().__init__()
        w = spec.width
        side = min(spec.shape[-2:])
        n = max(1, min(3, int(math.log2(side)) - 2))  # strided convs; the map stays at least 2x2
        norm = (lambda c: nn.BatchNorm2d(c)) if spec.bn_d else (lambda c: nn.Identity())
        c_in = spec.in_channels + spec.shape[0]
        layers: list[nn.Module] = [sn(nn.Conv2d(c_in, w, 4, 2, 1), spec.sn_d), nn.LeakyReLU(0.2)]
        c = w
        for k in range(1, n + 1):
            nxt = w * 2 ** min(k, MAX_DOUBLINGS)
            stride = 2 if k < n else 1
            layers += [sn(nn.Conv2d(c, nxt, 4, stride, 1, bias=not spec.bn_d), spec.sn_d), norm(nxt), nn.LeakyReLU(0.2)]
            c = nxt
        layers.append(sn(nn.Conv2d(c, out_dim, 4, 1, 1), spec.sn_d))
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, ab: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [N, 1, h, w], one per patch, for inputs and outputs concatenated along channels."""
        return self.net(ab)


register_arch("unet", "pairs", conditional=False, check=check_unet)((UNet, PatchGAN))
