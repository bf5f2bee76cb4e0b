"""DCGAN (Radford et al. 2016) at 16 to 256 pixels; SN-DCGAN discriminator when sn_d.

G: z -> 4x4 -> transposed-conv blocks doubling the size -> tanh image.
D: strided convs halving the size down to 4x4 -> linear (+ projection when conditional).
Channels double towards 4x4 up to 8 x width (DCGAN's 64 px nets; larger ones stay at that cap).
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import Spec, register_arch
from .layers import CondBatchNorm2d, Projection, class_embedding, initialise, input_layer, sn, weight_of

MAX_DOUBLINGS = 3  # channels at most 8 x width


def _init(m: nn.Module) -> None:
    """DCGAN's N(0, 0.02) weights and zero biases (under spectral norm too: `weight_of`)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(weight_of(m), 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, spec: Spec):
        super().__init__()
        self.z_dim, self.num_classes = spec.z_dim, spec.num_classes
        n = spec.n_up  # 2 to 6 doublings from 4x4
        chans = [spec.width * 2 ** min(n - 1 - i, MAX_DOUBLINGS) for i in range(n)]  # channels at 4x4, 8x8, ...
        # the class also enters through the input (a short embedding beside z): conditioning is
        # learned much sooner than through the batch-norm gains alone; kept short so z still matters
        e_dim = min(16, spec.z_dim) if spec.num_classes else 0
        self.embed = nn.Embedding(spec.num_classes, e_dim) if spec.num_classes else None
        self.fc = sn(nn.Linear(spec.z_dim + e_dim, chans[0] * 16), spec.sn_g)
        self.bn0 = CondBatchNorm2d(chans[0], spec.num_classes)
        self.ups = nn.ModuleList(
            sn(nn.ConvTranspose2d(chans[i], chans[i + 1], 4, 2, 1, bias=False), spec.sn_g) for i in range(n - 1)
        )
        self.bns = nn.ModuleList(CondBatchNorm2d(chans[i + 1], spec.num_classes) for i in range(n - 1))
        # g_extra: 3x3 convs at each scale below the output (chans[i] channels at 4 * 2**i pixels)
        self.extra = nn.ModuleList(
            nn.ModuleList(sn(nn.Conv2d(c, c, 3, 1, 1, bias=False), spec.sn_g) for _ in range(spec.g_extra)) for c in chans
        )
        self.extra_bns = nn.ModuleList(
            nn.ModuleList(CondBatchNorm2d(c, spec.num_classes) for _ in range(spec.g_extra)) for c in chans
        )
        self.out = sn(nn.ConvTranspose2d(chans[-1], spec.shape[0], 4, 2, 1), spec.sn_g)
        initialise(self, _init)

    def latent_weight(self) -> torch.Tensor:
        """The weights that act first on z (SeFa): `fc`'s columns for z (the class embedding's left out)."""
        return self.fc.weight[:, : self.z_dim]

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, class_embedding(self.embed, y).to(z.dtype)], 1)
        h = self.fc(z).view(z.shape[0], -1, 4, 4)  # [N, C0, 4, 4]
        h = self._refine(torch.relu(self.bn0(h, y)), 0, y)
        for i, (up, bn) in enumerate(zip(self.ups, self.bns)):
            h = self._refine(torch.relu(bn(up(h), y)), i + 1, y)
        return torch.tanh(self.out(h))  # [N, C, R, R]

    def _refine(self, h: torch.Tensor, scale: int, y: torch.Tensor | None) -> torch.Tensor:
        for conv, bn in zip(self.extra[scale], self.extra_bns[scale]):
            h = torch.relu(bn(conv(h), y))
        return h


class Discriminator(nn.Module):
    def __init__(self, spec: Spec, out_dim: int = 1):
        super().__init__()
        n = spec.n_up
        chans = [spec.width * 2 ** min(i, MAX_DOUBLINGS) for i in range(n)]  # at R/2, R/4, ..., 4x4
        layers: list[nn.Module] = [sn(nn.Conv2d(spec.shape[0] * spec.pac, chans[0], 4, 2, 1), spec.sn_d), nn.LeakyReLU(0.2)]
        for i in range(n):
            if i:  # stride 2 to the next scale
                layers += self._conv(spec, chans[i - 1], chans[i], 4, 2)
            for _ in range(spec.d_extra):  # SNGAN's standard CNN puts a 3x3 conv at each scale
                layers += self._conv(spec, chans[i], chans[i], 3, 1)
        self.body = nn.Sequential(*layers)
        self.head = Projection(chans[-1] * 16, spec.num_classes, out_dim, spec.sn_d)
        initialise(self, _init)

    @staticmethod
    def _conv(spec: Spec, c_in: int, c_out: int, k: int, stride: int) -> list[nn.Module]:
        layers = [sn(nn.Conv2d(c_in, c_out, k, stride, 1, bias=not spec.bn_d), spec.sn_d)]
        if spec.bn_d:  # the original DCGAN normalises D with BN (SN, or a gradient penalty, replaces it)
            layers.append(nn.BatchNorm2d(c_out))
        return [*layers, nn.LeakyReLU(0.2)]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body[1:](input_layer(self.body[0], x))  # [N, C, 4, 4]
        return self.head(h.flatten(1), y)  # [N]


register_arch("dcgan", "image", (16, 32, 64, 128, 256), ("d_extra", "g_extra"))((Generator, Discriminator))
