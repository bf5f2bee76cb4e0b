"""Building blocks shared by the architecture files."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def sn(module: nn.Module, on: bool) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) when `on`."""
    return spectral_norm(module) if on else module


def fp32(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`layer(x)` in float32 even under bf16 autocast.

    For a network's input layer: D's first-layer weight gradient is the sum of a real-batch and
    a fake-batch term that nearly cancel, and each rounded to bf16 loses 10-20% of the sum
    (measured on the demo preset); the layer is a small share of the arithmetic.
    """
    if not torch.is_autocast_enabled(x.device.type):
        return layer(x)
    with torch.autocast(x.device.type, enabled=False):
        return layer(x.float())


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
        return self.gamma(y)[:, :, None, None] * h + self.beta(y)[:, :, None, None]


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
