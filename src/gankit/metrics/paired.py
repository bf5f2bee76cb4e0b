"""Metrics of a translation against its targets, pair by pair (L1, PSNR, SSIM), and of the outputs as a
set against the targets as a set (FID, KID: realism, which the pairwise ones do not measure). A CycleGAN
also gets its cycle error (L1 of A -> B -> A against A); on unpaired data, which has no targets, only
FID, KID (against domain B's images) and the cycle error apply.

Images are compared as saved: 8-bit values, scaled to [0, 1]. PSNR is the mean over images of
10 log10(1 / MSE); SSIM is Wang et al. (2004) with an 11x11 Gaussian window of sigma 1.5, K1 0.01,
K2 0.03, "valid" windows only, per channel, averaged over the image, then over images (as
scikit-image's `structural_similarity(gaussian_weights=True, use_sample_covariance=False)`).
"""
from __future__ import annotations

import math
import time
from typing import Any

import torch
import torch.nn.functional as F

from ..version import __version__
from ..data import Dataset
from ..errors import GankitError
from . import core
from .features import FEATURE_NETS, as_saved, cached_real_features

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


@torch.no_grad()
def translate_rows(G: torch.nn.Module, ds: Dataset, idx: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """G's outputs (eval mode, on the CPU) for the inputs of rows `idx` of a translation dataset."""
    return translate_batches(G, ds.inputs[idx].float() / 127.5 - 1.0, batch)


def translate_batches(G: torch.nn.Module, a: torch.Tensor, batch: int = 64) -> torch.Tensor:
    from ..translation import translate_tensor

    return torch.cat([translate_tensor(G, a[i:i + batch]) for i in range(0, len(a), batch)])


def evaluate_translation(G: torch.nn.Module, ds: Dataset, metrics: list[str], n: int, seed: int = 0, features: str | None = None,
                         inception: str | None = None) -> dict[str, Any]:
    """Metrics of G's translations of n seeded pairs of `ds` against their targets, with provenance."""
    if ds.kind != "pairs":
        raise GankitError(f"{ds.name}: a translation is evaluated on paired data (data.pairs), not {ds.kind}")
    if ds.in_channels != G.in_channels or ds.shape[0] != G.out_channels:
        raise GankitError(f"{ds.name}: pairs of {ds.in_channels} -> {ds.shape[0]} channels, but the run translates "
                          f"{G.in_channels} -> {G.out_channels}")
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    n_a = len(ds) if ds.paired else len(ds.inputs)
    idx = torch.randperm(n_a, generator=g)[: min(n, n_a)].sort().values
    out = translate_rows(G, ds, idx)
    # unpaired: outputs against a seeded subset of domain B as a set (there are no targets)
    t_idx = idx if ds.paired else torch.randperm(len(ds.x), generator=g)[: min(n, len(ds.x))].sort().values
    target = ds.to_float(t_idx)
    res: dict[str, Any] = {}
    if not ds.paired:
        metrics = [m for m in metrics if m not in ("l1", "psnr", "ssim")]
    if "cycle" in metrics and hasattr(G, "ba"):
        res["cycle"] = l1(translate_batches(G.ba, out), ds.inputs[idx].float() / 127.5 - 1.0)
    if "l1" in metrics:
        res["l1"] = l1(out, target)
    if "psnr" in metrics:
        res["psnr"] = psnr(out, target)
    if "ssim" in metrics:
        res["ssim"] = ssim(out, target)
    prov_net = "none"
    if "fid" in metrics or "kid" in metrics:
        net = FEATURE_NETS.get(features or "inception")(ds, inception)
        prov_net = {"name": net.name, "weights_sha256": net.weights_sha256, "dim": net.dim}
        real_f, fake_f = cached_real_features(net, ds, t_idx, seed), net.run(as_saved(out))  # targets' features cached per data and subset
        if "fid" in metrics:
            res["fid"] = core.fid(real_f, fake_f)
        if "kid" in metrics:
            res["kid"], res["kid_std"] = core.kid(real_f, fake_f, subset_size=min(1000, len(idx), len(t_idx)), seed=seed)
    res["provenance"] = {
        "features": prov_net, "n_fake": len(idx), "n_real": len(t_idx), "real": ds.name, "real_fingerprint": ds.fingerprint(),
        "real_split": (f"seeded random subset (seed {seed}) of all {len(ds)} pairs; outputs against their own targets" if ds.paired else
                       f"seeded random subsets (seed {seed}) of the {len(ds.inputs)} images of A (translated) and the {len(ds.x)} of B (unpaired)"),
        "resolution": list(ds.shape), "resize": "pairs resized once at load time exactly as for training (Pillow, aspect kept, centre crop)",
        "compared_as": "8-bit images scaled to [0, 1]; SSIM 11x11 Gaussian window, sigma 1.5", "paired": ds.paired,
        "seed": seed, "gankit": __version__, "seconds": round(time.perf_counter() - t0, 2),
    }
    if any(not math.isfinite(v) for v in res.values() if isinstance(v, float)):
        res.setdefault("warnings", []).append("a metric is not finite: the outputs hold NaN or infinite values")
    return res
