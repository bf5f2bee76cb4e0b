"""Metrics of a translation against its targets, pair by pair (L1, PSNR, SSIM). A translation run is
also measured as a set against the targets as a set (FID, KID: realism, which the pairwise ones do not
measure) and, for a CycleGAN, by its cycle error (L1 of A -> B -> A against A); on unpaired data, which
has no targets, only FID, KID (against domain B's images) and the cycle error apply. That evaluation of
a run is `analysis.paired`; the formulas are here.

Images are compared as saved: 8-bit values, scaled to [0, 1]. PSNR is the mean over images of
10 log10(1 / MSE); SSIM is Wang et al. (2004) with an 11x11 Gaussian window of sigma 1.5, K1 0.01,
K2 0.03, "valid" windows only, per channel, averaged over the image, then over images (as
scikit-image's `structural_similarity(gaussian_weights=True, use_sample_covariance=False)`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import GankitError
from .features import as_saved

PAIRED = ("l1", "psnr", "ssim", "fid", "kid", "cycle")
PSNR_CAP = 100.0  # dB for an image identical to its target (MSE 0)


def _unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images -> [0, 1] at the 256 levels a saved image holds, float64."""
    return (as_saved(x).double() + 1) / 2


def l1(out: torch.Tensor, target: torch.Tensor) -> float:
    return float((_unit(out) - _unit(target)).abs().mean())


def psnr(out: torch.Tensor, target: torch.Tensor) -> float:
    mse = ((_unit(out) - _unit(target)) ** 2).flatten(1).mean(1)
    per = torch.where(mse > 0, 10 * torch.log10(1 / mse.clamp_min(1e-30)), torch.full_like(mse, PSNR_CAP))
    return float(per.mean())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(out: torch.Tensor, target: torch.Tensor, size: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM over images (each the mean over channels and valid window positions)."""
    x, y = _unit(out), _unit(target)
    if min(x.shape[-2:]) < size:
        raise GankitError(f"SSIM needs images of at least {size}x{size}, got {x.shape[-1]}x{x.shape[-2]}")
    c = x.shape[1]
    w = _gaussian_window(size, sigma).expand(c, 1, size, size)
    blur = lambda t: F.conv2d(t, w, groups=c)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.flatten(1).mean(1).mean())
