"""A translation run measured against held-out pairs (or, unpaired, against domain B): its outputs for
seeded inputs, the formulas of `metrics.paired` and Inception's FID/KID, with provenance."""
from __future__ import annotations

import math
import time
from typing import Any

import torch

from ..data import Dataset
from ..errors import GankitError
from ..metrics import core
from ..metrics.features import FEATURE_NETS, as_saved, cached_real_features
from ..metrics.paired import l1, psnr, ssim
from ..version import __version__


@torch.no_grad()
def translate_rows(G: torch.nn.Module, ds: Dataset, idx: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """G's outputs (eval mode, on the CPU) for the inputs of rows `idx` of a translation dataset."""
    return translate_batches(G, ds.inputs[idx].float() / 127.5 - 1.0, batch)


def translate_batches(G: torch.nn.Module, a: torch.Tensor, batch: int = 64) -> torch.Tensor:
    from ..artefact.translation import translate_tensor

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
