"""CycleGAN's networks (Zhu et al. 2017) for unpaired translation.

G: the ResNet generator of Johnson et al. as CycleGAN uses it: a 7x7 conv, two halvings by strided 3x3
convs (width, 2x, 4x channels), `model.depth` residual blocks at a quarter of the size (CycleGAN: 9 at
256 px, 6 at 128), two transposed-conv doublings, a 7x7 conv to the output, tanh; reflection padding,
per-image normalisation (`unet.InstanceNorm`: CycleGAN's instance norm, here with a learned scale and
shift so that tiled inference can fix its statistics), ReLU. D: the PatchGAN of `unet.py` judging one
domain's images.

A CycleGAN run holds two of each: `CycleG` (ab: A to B, ba: B to A; its forward is A to B, so sampling
grids, `translate` and evaluation use ab unless asked for the other direction) and `CycleD` (on_a, on_b).
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..errors import ConfigError
from .registry import Spec, register_arch
from .unet import InstanceNorm, PatchGAN, _init


def check_blocks(depth: int, shape: tuple[int, ...]) -> None:
    h, w = shape[-2:]
    if not 1 <= depth <= 30:
        raise ConfigError(f"model.depth: the residual blocks of resnet_blocks; give 1..30 (CycleGAN: 9 at 256 px, 6 at 128), got {depth}")
    if h % 4 or w % 4 or min(h, w) < 8:
        raise ConfigError(f"data.resolution: resnet_blocks halves the image twice: each side must divide by 4 and be at least 8, got {w}x{h}")


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), InstanceNorm(c), nn.ReLU(),
                                  nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), InstanceNorm(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetBlocks(nn.Module):
    multiple = 4  # image sides must divide by this

    def __init__(self, spec: Spec):
        super().__init__()
        w, n = spec.width, spec.depth
        self.in_channels, self.out_channels, self.blocks = spec.in_channels, spec.shape[0], n
        self.z_dim, self.num_classes = spec.z_dim, 0
        # (no biases before a norm: it removes them; their gradients would be rounding noise that Adam amplifies)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(self.in_channels, w, 7, bias=False), InstanceNorm(w), nn.ReLU()]
        for k in (1, 2):
            layers += [nn.Conv2d(w * 2 ** (k - 1), w * 2**k, 3, 2, 1, bias=False), InstanceNorm(w * 2**k), nn.ReLU()]
        layers += [_Block(4 * w) for _ in range(n)]
        for k in (2, 1):
            layers += [nn.ConvTranspose2d(w * 2**k, w * 2 ** (k - 1), 3, 2, 1, output_padding=1, bias=False), InstanceNorm(w * 2 ** (k - 1)),
                       nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, self.out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    @property
    def context(self) -> int:
        """Pixels on each side an output pixel depends on (with the normalisation's statistics fixed):
        the 7x7 convs, the halvings and 8 pixels per residual block, measured in tests/test_translation.py."""
        reach = 8 * self.blocks + 10
        return self.multiple * -(-reach // self.multiple)

    def forward(self, a: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(a)


class CycleG(nn.Module):
    """CycleGAN's two generators; forward translates A to B."""

    def __init__(self, ab: nn.Module, ba: nn.Module):
        super().__init__()
        self.ab, self.ba = ab, ba
        self.in_channels, self.out_channels, self.multiple = ab.in_channels, ab.out_channels, ab.multiple
        self.z_dim, self.num_classes = ab.z_dim, 0

    @property
    def context(self) -> int:
        return self.ab.context

    def direction(self, which: str) -> nn.Module:
        return self.ab if which == "AtoB" else self.ba

    def forward(self, a: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.ab(a)


class CycleD(nn.Module):
    """CycleGAN's two discriminators: on_a judges domain A's images, on_b domain B's."""

    def __init__(self, on_a: nn.Module, on_b: nn.Module):
        super().__init__()
        self.on_a, self.on_b = on_a, on_b


def cycle_models(arch_g: type, spec: Spec) -> tuple[nn.Module, nn.Module]:
    """The networks of a CycleGAN run for architecture generator `arch_g` (its D is a PatchGAN per domain)."""
    back = dataclasses.replace(spec, shape=(spec.in_channels, *spec.shape[1:]), in_channels=spec.shape[0])
    G = CycleG(arch_g(spec), arch_g(back))
    D = CycleD(PatchGAN(spec, channels=spec.in_channels), PatchGAN(spec, channels=spec.shape[0]))
    return G, D


register_arch("resnet_blocks", "pairs", conditional=False, check=check_blocks)((ResnetBlocks, PatchGAN))
