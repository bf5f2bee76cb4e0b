"""R3GAN's networks (Huang et al., "The GAN is dead; long live the GAN!", NeurIPS 2024), written
from the paper: a ConvNeXt-style residual network with no normalisation layers, trained with the
relativistic pairing loss (`loss.name=rpgan`) and R1 + R2 penalties.

Each stage holds `blocks` residual blocks at one resolution: 1x1 conv (widen by EXPANSION),
leaky ReLU, 3x3 grouped conv (GROUP_SIZE channels per group), leaky ReLU, 1x1 conv back, added to
the input. Fix-up style initialisation: the last conv of each branch starts at zero and the others
are scaled down with the number of blocks, so the network starts as the identity path and needs
no normalisation. Stages are joined by transitions: [1, 3, 3, 1]-filtered resampling and a 1x1 conv.
G: z (plus a class embedding) -> a learned 4x4 basis scaled per channel by a linear map of z ->
stages up to the resolution -> 1x1 conv to the image, linear as in R3GAN (no tanh: a tanh output
saturated on Stacked MNIST's black backgrounds, where its gradient vanished and D won for good). D mirrors it down to 4x4, then a
depthwise 4x4 conv to a vector and a linear head (conditional: only the class term <linear(h), embed(y)>).
Widths and blocks per stage: `model.widths` and `model.blocks` (from 4x4 up).

Initialisation as in the authors' code (brownvc/R3GAN, `R3GAN/Networks.py`; compared layer by layer
by `benchmarks/parity/r3gan.py`): every weight outside the residual branches N(0, 1/fan-in), no
biases outside the branches, G's 4x4 basis N(0, 1), G's class embedding of std 1/sqrt(classes) and
z_dim wide (a one-hot through a bias-free linear layer), D's class embedding of gain 1/sqrt(width).
With PyTorch's default initialisation and an N(0, 1) class embedding (gankit before 0.15), G's
class term drowned z and every sample of a class came out the same. The resampling is R3GAN's too:
bilinear resampling (gankit before 0.15) keeps constants constant at the borders where R3GAN's
filter zero-pads, which changed outputs of identical weights by up to half their range.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import Spec, register_arch
from .layers import class_embedding, fir_resample as resample, input_layer

EXPANSION = 2
GROUP_SIZE = 16
SLOPE = 0.2


def stage_plan(spec: Spec) -> tuple[list[int], list[int]]:
    """Channels and residual blocks per stage, 4x4 first (n_up + 1 stages)."""
    n = spec.n_up + 1
    widths = list(spec.widths) or [spec.width * 2] * n
    blocks = list(spec.blocks) or [1] * n
    if len(widths) == 1:
        widths = widths * n
    if len(blocks) == 1:
        blocks = blocks * n
    if len(widths) != n or len(blocks) != n:
        raise ValueError(f"model.widths / model.blocks: {spec.resolution}x{spec.resolution} has {n} stages (4x4 up); "
                         f"give {n} values or one, got widths {list(spec.widths)} and blocks {list(spec.blocks)}")
    return widths, blocks


def msr(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """R3GAN's initialisation (`MSRInitializer`): weights of std gain / sqrt(fan-in), biases zero."""
    w = layer.weight
    nn.init.normal_(w, 0.0, gain / math.sqrt(w.shape[1] * w[0][0].numel()))
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _groups(channels: int) -> int:
    return max(1, channels // GROUP_SIZE) if channels % GROUP_SIZE == 0 else 1


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, total_blocks: int):
        super().__init__()
        hidden = channels * EXPANSION
        self.widen = nn.Conv2d(channels, hidden, 1)
        self.mix = nn.Conv2d(hidden, hidden, 3, padding=1, groups=_groups(hidden))
        self.narrow = nn.Conv2d(hidden, channels, 1, bias=False)
        # fix-up: branch of m = 3 layers in a net of L blocks; scale the first two by L^(-1/(2m-2)), zero the last
        scale = total_blocks ** (-1 / 4)
        for conv in (self.widen, self.mix):
            nn.init.kaiming_normal_(conv.weight, a=SLOPE, nonlinearity="leaky_relu")
            conv.weight.data.mul_(scale)
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.narrow.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.widen(x), SLOPE)
        h = F.leaky_relu(self.mix(h), SLOPE)
        return x + self.narrow(h)


class Transition(nn.Module):
    """Resampling by `factor` (2: up, 0.5: down; `resample`) and a 1x1 conv between widths."""

    def __init__(self, c_in: int, c_out: int, factor: float):
        super().__init__()
        self.factor = factor
        self.conv = msr(nn.Conv2d(c_in, c_out, 1, bias=False)) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.factor > 1 and self.conv is not None:  # fewer channels to upsample: convert first
            x = self.conv(x)
        x = resample(x, self.factor > 1)
        if self.factor < 1 and self.conv is not None:
            x = self.conv(x)
        return x


class Generator(nn.Module):
    def __init__(self, spec: Spec):
        super().__init__()
        self.z_dim, self.num_classes = spec.z_dim, spec.num_classes
        widths, blocks = stage_plan(spec)
        total = sum(blocks)
        e_dim = spec.z_dim if spec.num_classes else 0
        self.embed = nn.Embedding(spec.num_classes, e_dim) if spec.num_classes else None
        if self.embed is not None:  # R3GAN: one-hot -> bias-free linear of std 1/sqrt(classes)
            nn.init.normal_(self.embed.weight, 0.0, spec.num_classes ** -0.5)
        self.basis = nn.Parameter(torch.randn(widths[0], 4, 4))  # a learned 4x4 basis, scaled per channel by z
        self.project = msr(nn.Linear(spec.z_dim + e_dim, widths[0], bias=False))
        self.stages = nn.ModuleList()
        for i, (c, b) in enumerate(zip(widths, blocks)):
            layers: list[nn.Module] = [Transition(widths[i - 1], c, 2)] if i else []
            layers += [ResidualBlock(c, total) for _ in range(b)]
            self.stages.append(nn.Sequential(*layers))
        self.to_image = msr(nn.Conv2d(widths[-1], spec.shape[0], 1, bias=False))

    def latent_weight(self) -> torch.Tensor:
        """The weights that act first on z (SeFa): `project`'s columns for z (the class embedding's left out)."""
        return self.project.weight[:, : self.z_dim]

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, class_embedding(self.embed, y).to(z.dtype)], 1)
        h = self.basis.unsqueeze(0) * self.project(z)[:, :, None, None]  # [N, C0, 4, 4]
        for stage in self.stages:
            h = stage(h)
        return self.to_image(h)


class Discriminator(nn.Module):
    def __init__(self, spec: Spec, out_dim: int = 1):
        super().__init__()
        widths, blocks = stage_plan(spec)
        widths, blocks = widths[::-1], blocks[::-1]  # from the image's resolution down to 4x4
        total = sum(blocks)
        self.from_image = msr(nn.Conv2d(spec.shape[0] * spec.pac, widths[0], 1, bias=False))
        self.stages = nn.ModuleList()
        for i, (c, b) in enumerate(zip(widths, blocks)):
            layers: list[nn.Module] = [ResidualBlock(c, total) for _ in range(b)]
            if i + 1 < len(widths):
                layers.append(Transition(c, widths[i + 1], 0.5))
            self.stages.append(nn.Sequential(*layers))
        self.basis = msr(nn.Conv2d(widths[-1], widths[-1], 4, groups=widths[-1], bias=False))  # depthwise 4x4 -> 1x1
        self.head = ClassHead(widths[-1], spec.num_classes, out_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = input_layer(self.from_image, x)
        for stage in self.stages:
            h = stage(h)
        return self.head(self.basis(h).flatten(1), y)  # no activation before the basis, as in R3GAN


class ClassHead(nn.Module):
    """R3GAN's D head: a bias-free linear map of the basis' output; unconditional, to `out_dim`
    logits; conditional, to `features` values whose inner product with the class embedding
    (gain 1/sqrt(features), so unit-variance inputs give a class term of unit variance) is the
    logit. No unconditional term beside the class term."""

    def __init__(self, features: int, num_classes: int, out_dim: int):
        super().__init__()
        self.linear = msr(nn.Linear(features, features if num_classes else out_dim, bias=False))
        self.embed = nn.Embedding(num_classes, features) if num_classes else None
        if self.embed is not None:  # a one-hot through a bias-free linear layer of gain 1/sqrt(features)
            nn.init.normal_(self.embed.weight, 0.0, (features * num_classes) ** -0.5)

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        out = self.linear(h)
        if self.embed is not None:
            return (out * class_embedding(self.embed, y).to(out.dtype)).sum(1)
        return out.squeeze(1) if out.shape[1] == 1 else out


# model.sn_d / sn_g do not apply: R3GAN has no normalisation of any kind, by design
register_arch("r3gan", "image", (16, 32, 64, 128, 256), ("widths", "blocks"))((Generator, Discriminator))
