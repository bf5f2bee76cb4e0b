"""SNGAN-style residual networks (Miyato et al. 2018) at 16 to 256 pixels.

G: z -> 4x4 -> up-blocks (BN, ReLU, nearest x2, 3x3 conv, twice, plus a 1x1 shortcut) -> tanh.
D: an optimised first block, down-blocks to 8x8, two plain blocks, ReLU,
global sum pooling, linear (+ projection when conditional).

At 32x32 these are the networks of the authors' CIFAR-10 code (pfnet-research/sngan_projection,
`gen_models/resnet_32.py`, `dis_models/snresnet_32.py`), with their initialisation: Glorot-uniform
weights, at gain sqrt(2) in the residual branches, zero biases (`benchmarks/parity/resnet.py` compares
them with StudioGAN's, which follows the same design). Differences: G's class also enters beside z
(below), D's output layer has a bias, and other sizes keep one width throughout (the authors' grow it).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import CondBatchNorm2d, Projection, class_embedding, initialise, sn, weight_of
from .registry import Spec, register_arch

RESIDUAL_GAIN = math.sqrt(2)  # the residual branches' 3x3 convs (the authors' GlorotUniform(sqrt(2)))


def _init(m: nn.Module) -> None:
    """Glorot-uniform weights (gain `init_gain` where a block set one, else 1), zero biases; the projection
    head's class embedding Glorot-uniform too (the batch-norm gains, also embeddings, keep their ones and zeros)."""
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(weight_of(m), getattr(m, "init_gain", 1.0))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, Projection) and m.embed is not None:
        nn.init.xavier_uniform_(weight_of(m.embed))


def _residual(*convs: nn.Module) -> None:
    for c in convs:
        c.init_gain = RESIDUAL_GAIN


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: int, use_sn: bool):
        super().__init__()
        self.bn1 = CondBatchNorm2d(cin, num_classes)
        self.conv1 = sn(nn.Conv2d(cin, cout, 3, 1, 1), use_sn)
        self.bn2 = CondBatchNorm2d(cout, num_classes)
        self.conv2 = sn(nn.Conv2d(cout, cout, 3, 1, 1), use_sn)
        self.skip = sn(nn.Conv2d(cin, cout, 1), use_sn)
        _residual(self.conv1, self.conv2)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(torch.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(torch.relu(self.bn2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool, first: bool, use_sn: bool):
        super().__init__()
        self.conv1 = sn(nn.Conv2d(cin, cout, 3, 1, 1), use_sn)
        self.conv2 = sn(nn.Conv2d(cout, cout, 3, 1, 1), use_sn)
        self.skip = sn(nn.Conv2d(cin, cout, 1), use_sn) if (cin != cout or down) else None
        self.down, self.first = down, first
        _residual(self.conv1, self.conv2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else torch.relu(x)
        h = self.conv2(torch.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:  # optimised block: pool, then project
            s = self.skip(F.avg_pool2d(s, 2) if self.down else s)
        elif self.skip is not None:
            s = self.skip(s)
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class Generator(nn.Module):
    def __init__(self, spec: Spec):
        super().__init__()
        self.z_dim, self.num_classes = spec.z_dim, spec.num_classes
        ch = spec.width * 4
        # the class also enters through the input (a short embedding beside z): conditioning is
        # learned much sooner than through the batch-norm gains alone; kept short so z still matters
        e_dim = min(16, spec.z_dim) if spec.num_classes else 0
        self.embed = nn.Embedding(spec.num_classes, e_dim) if spec.num_classes else None
        self.fc = sn(nn.Linear(spec.z_dim + e_dim, ch * 16), spec.sn_g)
        self.blocks = nn.ModuleList(GBlock(ch, ch, spec.num_classes, spec.sn_g) for _ in range(spec.n_up))
        self.bn = nn.BatchNorm2d(ch)
        self.out = sn(nn.Conv2d(ch, spec.shape[0], 3, 1, 1), spec.sn_g)
        initialise(self, _init)

    def latent_weight(self) -> torch.Tensor:
        """The weights that act first on z (SeFa): `fc`'s columns for z (the class embedding's left out)."""
        return self.fc.weight[:, : self.z_dim]

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, class_embedding(self.embed, y).to(z.dtype)], 1)
        h = self.fc(z).view(z.shape[0], -1, 4, 4)  # [N, ch, 4, 4]
        for b in self.blocks:
            h = b(h, y)
        return torch.tanh(self.out(torch.relu(self.bn(h))))  # [N, C, R, R]


class Discriminator(nn.Module):
    def __init__(self, spec: Spec, out_dim: int = 1):
        super().__init__()
        ch = spec.width * 2
        n_down = spec.n_up - 1  # down to 8x8
        blocks = [DBlock(spec.shape[0] * spec.pac, ch, True, True, spec.sn_d)]
        blocks += [DBlock(ch, ch, True, False, spec.sn_d) for _ in range(n_down - 1)]
        blocks += [DBlock(ch, ch, False, False, spec.sn_d) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = Projection(ch, spec.num_classes, out_dim, spec.sn_d)
        initialise(self, _init)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = torch.relu(self.blocks(x)).sum(dim=(2, 3))  # [N, ch]
        return self.head(h, y)  # [N]


register_arch("resnet", "image", (16, 32, 64, 128, 256))((Generator, Discriminator))
