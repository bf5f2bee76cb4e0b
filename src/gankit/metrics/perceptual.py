"""A perceptual distance between images from networks available offline, for projection.

LPIPS, the usual choice, needs VGG or AlexNet weights that would be downloaded; they are not
available here. `InceptionDistance` reads the FID Inception network gankit already uses
(`features.load_inception`, pinned by its hash) up to an intermediate block and compares its
activations as LPIPS does without its learned per-channel weights: each tap's activations
normalised to unit length over channels, squared differences summed over channels and averaged
over positions, then over taps. Its scale is not LPIPS's, and it was not calibrated on human
judgements; it is a distance that is small when the same network sees the same structures.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# blocks of the TF-FID Inception in order, and where activations are compared (early edges to mid-level parts)
BLOCKS = ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1", "mixed", "mixed_1", "mixed_2",
          "mixed_3", "mixed_4", "mixed_5", "mixed_6", "mixed_7")
TAPS = ("conv_2", "conv_4", "mixed_2", "mixed_7")
MIN_SIDE = 128  # images are upsampled to at least this (Inception's stride-2 stem needs room): 42 ms per image forward and backward here


class InceptionDistance(nn.Module):
    """d(a, b) per image for [-1, 1] images [N, C, H, W] of one size (grey is repeated to 3 channels);
    differentiable in both. `side`: the size the images are resized to (default max(128, H))."""

    name = "inception"

    def __init__(self, path: str | None = None, side: int | None = None):
        super().__init__()
        from .features import load_inception

        net, self.weights_sha256 = load_inception(path)
        layers = dict(net.net.layers.named_children())
        self.blocks = [layers[b] for b in BLOCKS]
        self.side = side

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        side = self.side or max(MIN_SIDE, x.shape[-1])
        x = x.float()
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        # the FID network's input scaling: 0..255 values, (p - 128) / 128, i.e. about the [-1, 1] range
        h = F.interpolate((x.clamp(-1, 1) + 1) * 127.5, size=(side, side), mode="bilinear", align_corners=False)
        h = (h - 128.0) / 128.0
        taps = []
        for name, block in zip(BLOCKS, self.blocks):
            h = block(h)
            if name in TAPS:
                taps.append(h / (h.square().sum(1, keepdim=True) + 1e-10).sqrt())
        return taps

    def forward(self, a: torch.Tensor, b: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """[N] distances; `b` may be `features(b)` computed once (a fixed target)."""
        fb = b if isinstance(b, list) else self.features(b)
        fa = self.features(a)
        return torch.stack([(p - q).square().sum(1).mean((1, 2)) for p, q in zip(fa, fb)]).mean(0)


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference per image of [-1, 1] images: [N]."""
    return (a.float() - b.float()).square().flatten(1).mean(1)
