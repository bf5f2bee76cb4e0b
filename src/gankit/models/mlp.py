"""MLP generator and discriminator for 2D point data (ring8, grid25)."""
from __future__ import annotations

import torch
from torch import nn

from .registry import Spec, register_arch
from .layers import Projection, class_embedding, sn


class Generator(nn.Module):
    def __init__(self, spec: Spec):
        super().__init__()
        self.z_dim, self.num_classes = spec.z_dim, spec.num_classes
        layers: list[nn.Module] = []
        d = spec.z_dim
        for _ in range(spec.depth):
            layers += [sn(nn.Linear(d, spec.width), spec.sn_g), nn.ReLU()]
            d = spec.width
        layers.append(nn.Linear(d, spec.shape[0]))
        self.net = nn.Sequential(*layers)
        self.embed = nn.Embedding(spec.num_classes, spec.z_dim) if spec.num_classes else None

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = z + class_embedding(self.embed, y)
        return self.net(z)  # [N, 2]


class Discriminator(nn.Module):
    def __init__(self, spec: Spec, out_dim: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        d = spec.shape[0] * spec.pac
        for _ in range(spec.depth):
            layers += [sn(nn.Linear(d, spec.width), spec.sn_d), nn.LeakyReLU(0.2)]
            d = spec.width
        self.body = nn.Sequential(*layers)
        self.head = Projection(d, spec.num_classes, out_dim, spec.sn_d)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(x), y)  # [N]


register_arch("mlp", "points")((Generator, Discriminator))
