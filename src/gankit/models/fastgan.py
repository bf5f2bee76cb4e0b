"""FastGAN (Liu et al., "Towards Faster and Stabilized GAN Training for High-fidelity Few-shot Image
Synthesis", ICLR 2021), written from the paper: a few-shot GAN for a few hundred images.

G: z -> 4x4 (transposed conv, batch norm, GLU) -> upsampling blocks (nearest 2x, 3x3 conv, batch
norm, GLU; every other block has two convs and noise inputs) -> 3x3 conv, tanh. Skip-layer
excitation (SLE): the 4x4, 8x8 and 16x16 features gate the channels of the 64x64, 128x128 and
256x256 ones (pool to 4x4, 4x4 conv, Swish, 1x1 conv, sigmoid), so below 64 px there is none.
D: a 3x3 conv at full resolution, then down blocks (a strided 4x4 + 3x3 conv path averaged with an
average-pool + 1x1 path) to 8x8, and a patch head (1x1 conv, 4x4 conv; the patch logits averaged).
Self-supervision: two small decoders reconstruct real images from D's features, the whole
image from the 8x8 features and one random quadrant from the matching 8x8 crop of the 16x16
features (`Discriminator.reconstruct`, weighted by `loss.recon` in the GAN step). The paper's
loss on those is LPIPS, whose weights gankit cannot download; here it is the mean squared error.
Unconditional only. Widths by resolution as in the paper (x `model.width` / 64 of its 64 base).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import Spec, register_arch
from .layers import fixed_noise, input_layer, noise_draw, sn

# channels per resolution as multiples of the base width (the paper's nfc_multi)
MULT = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25}
SLE_FROM = {64: 4, 128: 8, 256: 16}  # big resolution: the small one whose features gate it
SLOPE = 0.2
DECODE_MAX = 128  # decoders reconstruct at most 128x128 (the paper's size)


def channels(width: int, res: int) -> int:
    return max(4, int(width * MULT[res]))


class Noise(nn.Module):
    """Per-pixel noise times a learned strength (starts at 0); a fixed draw in eval mode."""

    noise_input = True  # `layers.per_sample_noise` reaches it
    fixed_draw = "const"  # the buffer used in eval mode (`layers.given_noise` replaces it)

    def __init__(self, res: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("const", torch.randn(res, res))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            noise = noise_draw(self, x)
        else:
            noise = fixed_noise(self, x, self.const)
        return x + self.strength.to(x.dtype) * noise


def up_block(c_in: int, c_out: int, res: int, use_sn: bool, twice: bool) -> nn.Sequential:
    """Nearest 2x, then (conv, [noise], BN, GLU) once, or twice with noise for the heavier blocks."""
    layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")]
    for i in range(2 if twice else 1):
        layers.append(sn(nn.Conv2d(c_in if i == 0 else c_out, 2 * c_out, 3, padding=1, bias=False), use_sn))
        if twice:
            layers.append(Noise(res))
        layers += [nn.BatchNorm2d(2 * c_out), nn.GLU(1)]
    return nn.Sequential(*layers)


class SLE(nn.Module):
    """Skip-layer excitation: channel gates for a big feature map from a small one."""

    def __init__(self, c_small: int, c_big: int, use_sn: bool):
        super().__init__()
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(4), sn(nn.Conv2d(c_small, c_big, 4, bias=False), use_sn), nn.SiLU(),
                                 sn(nn.Conv2d(c_big, c_big, 1, bias=False), use_sn), nn.Sigmoid())

    def forward(self, small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
        return big * self.net(small)


class Generator(nn.Module):
    def __init__(self, spec: Spec):
        super().__init__()
        self.z_dim, self.num_classes = spec.z_dim, 0
        res, w, s = spec.resolution, spec.width, spec.sn_g
        self.init = nn.Sequential(sn(nn.ConvTranspose2d(spec.z_dim, 2 * channels(w, 4), 4, bias=False), s),
                                  nn.BatchNorm2d(2 * channels(w, 4)), nn.GLU(1))
        self.ups = nn.ModuleDict()
        r = 8
        while r <= res:
            self.ups[str(r)] = up_block(channels(w, r // 2), channels(w, r), r, s, twice=r in (8, 32, 128))
            r *= 2
        self.sles = nn.ModuleDict({str(big): SLE(channels(w, small), channels(w, big), s) for big, small in SLE_FROM.items() if big <= res})
        self.to_image = sn(nn.Conv2d(channels(w, res), spec.shape[0], 3, padding=1), s)

    def latent_weight(self) -> torch.Tensor:
        """The weights that act first on z (SeFa): the 4x4 transposed conv's, [out values, z_dim]."""
        w = self.init[0].weight  # [z_dim, channels, 4, 4]
        return w.reshape(w.shape[0], -1).T

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.init(z[:, :, None, None])
        feats = {4: h}
        for r, up in self.ups.items():
            h = up(h)
            if r in self.sles:
                h = self.sles[r](feats[SLE_FROM[int(r)]], h)
            feats[int(r)] = h
        return torch.tanh(self.to_image(h))


class DownBlock(nn.Module):
    """Half the resolution: (4x4 stride-2 conv, BN, lrelu, 3x3 conv, BN, lrelu) averaged with
    (2x2 average pool, 1x1 conv, BN, lrelu)."""

    def __init__(self, c_in: int, c_out: int, use_sn: bool):
        super().__init__()
        self.main = nn.Sequential(sn(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), use_sn), nn.BatchNorm2d(c_out), nn.LeakyReLU(SLOPE),
                                  sn(nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), use_sn), nn.BatchNorm2d(c_out), nn.LeakyReLU(SLOPE))
        self.direct = nn.Sequential(nn.AvgPool2d(2), sn(nn.Conv2d(c_in, c_out, 1, bias=False), use_sn), nn.BatchNorm2d(c_out), nn.LeakyReLU(SLOPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


class Decoder(nn.Module):
    """8x8 features -> an image of `res` (nearest 2x, 3x3 conv, BN, GLU per doubling; 3x3 conv, tanh)."""

    def __init__(self, c_in: int, width: int, out_channels: int, res: int):
        super().__init__()
        layers: list[nn.Module] = []
        r, c = 8, c_in
        while r < res:
            c_next = max(4, channels(width, 2 * r) // 2)
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, 2 * c_next, 3, padding=1, bias=False),
                       nn.BatchNorm2d(2 * c_next), nn.GLU(1)]
            r, c = 2 * r, c_next
        self.net = nn.Sequential(*layers, nn.Conv2d(c, out_channels, 3, padding=1), nn.Tanh())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def quadrants(x: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
    """Quadrant `part[i]` (0: top left, 1: top right, 2: bottom left, 3: bottom right) of each x[i]."""
    n, c, h, w = x.shape
    q = x.reshape(n, c, 2, h // 2, 2, w // 2).permute(0, 2, 4, 1, 3, 5).reshape(n, 4, c, h // 2, w // 2)
    return q[torch.arange(n, device=x.device), part.to(x.device)]


class Discriminator(nn.Module):
    def __init__(self, spec: Spec, out_dim: int = 1):
        super().__init__()
        res, w, s = spec.resolution, spec.width, spec.sn_d
        c_in = spec.shape[0] * spec.pac
        top = channels(w, min(2 * res, 512))
        self.from_image = sn(nn.Conv2d(c_in, top, 3, padding=1), s)
        self.downs = nn.ModuleList()
        r, c = res, top
        while r > 8:
            c_next = channels(w, r)  # D's width at r / 2 is G's at r, as in the paper
            self.downs.append(DownBlock(c, c_next, s))
            r, c = r // 2, c_next
        self.c16 = channels(w, 32) if res > 16 else top  # the 16x16 features' width
        self.head = nn.Sequential(sn(nn.Conv2d(c, c // 2, 1, bias=False), s), nn.BatchNorm2d(c // 2), nn.LeakyReLU(SLOPE),
                                  sn(nn.Conv2d(c // 2, out_dim, 4), s))
        self.out_dim = out_dim
        dec = min(res, DECODE_MAX)
        self.decode_all = Decoder(c, w, c_in, dec)
        self.decode_part = Decoder(self.c16, w, c_in, dec)
        self.decode_res = dec

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the 16x16 features, the 8x8 features)."""
        h = F.leaky_relu(input_layer(self.from_image, x), SLOPE)
        f16 = h if h.shape[-1] == 16 else None
        for down in self.downs:
            h = down(h)
            if h.shape[-1] == 16:
                f16 = h
        return f16, h

    def logits(self, h8: torch.Tensor) -> torch.Tensor:
        out = self.head(h8).mean((2, 3))  # the patch logits, averaged
        return out.squeeze(1) if self.out_dim == 1 else out

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits(self.features(x)[1])

    def reconstruct(self, x: torch.Tensor, part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits on real images `x` and the self-supervised reconstruction loss: the whole image
        from the 8x8 features, quadrant `part` [N] from the matching crop of the 16x16 features."""
        f16, h8 = self.features(x)
        target = resize(x.float(), self.decode_res)
        part_target = resize(quadrants(x.float(), part), self.decode_res)
        rec_all = self.decode_all(h8).float()
        rec_part = self.decode_part(quadrants(f16, part)).float()
        loss = F.mse_loss(rec_all, target) + F.mse_loss(rec_part, part_target)
        return self.logits(h8), loss


register_arch("fastgan", "image", (16, 32, 64, 128, 256), conditional=False)((Generator, Discriminator))
