"""Metric formulas on feature arrays and point sets, in float64 numpy.

Every function takes plain arrays so that tests can check it against hand-made inputs.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(feats, dtype=np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2), computed so that it is always real.

    tr((S1 S2)^1/2) = tr((S1^1/2 S2 S1^1/2)^1/2), and S1^1/2 S2 S1^1/2 is symmetric
    positive semi-definite: its eigenvalues are real and are clipped at 0. No complex
    numbers appear, with few samples or a collapsed generator (singular covariances).
    """
    r = _psd_sqrt(s1)
    m = r @ s2 @ r
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(ev, 0, None)).sum())
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean, 0.0))


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    return frechet_distance(*stats(real), *stats(fake))


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2, cubic polynomial kernel.

    Returns mean and std over random subsets of `subset_size` (standard: 1000) from each side. With
    fewer samples than that, subsets of half the smaller set, so that they differ and the spread is
    real (subsets as large as a whole set would all be that set, and the spread 0). The estimate is
    unbiased: for indistinguishable sets it scatters around 0 and can be slightly negative.
    """
    rng = np.random.default_rng(seed)
    x, y = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    d = x.shape[1]
    m = min(subset_size, len(x), len(y))
    if m == min(len(x), len(y)):
        m = max(2, m // 2)
    vals = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx = (a @ a.T / d + 1) ** 3
        kyy = (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        mmd = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        vals.append(mmd)
    return float(np.mean(vals)), float(np.std(vals))


def _dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return torch.cdist(torch.from_numpy(np.asarray(a, np.float64)), torch.from_numpy(np.asarray(b, np.float64))).numpy()


def _kth_radius(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point."""
    d = _dists(x, x)
    return np.partition(d, k, axis=1)[:, k]  # index 0 is the point itself (distance 0)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN manifolds."""
    rr, rf = _kth_radius(real, k), _kth_radius(fake, k)
    d = _dists(real, fake)  # [R, F]
    precision = float((d <= rr[:, None]).any(0).mean())
    recall = float((d <= rf[None, :]).any(1).mean())
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020).

    Density counts, for each generated point, the real k-NN balls that contain it, over k;
    it is about 1 for two samples of one distribution ((k+1)/k for a set against itself).
    """
    rr = _kth_radius(real, k)
    inside = _dists(real, fake) <= rr[:, None]  # [R, F]
    density = float(inside.sum() / (k * fake.shape[0]))
    coverage = float(inside.any(1).mean())
    return density, coverage


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))), mean and std over splits."""
    p = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def class_coverage(pred: np.ndarray, real_labels: np.ndarray, num_classes: int) -> dict[str, float]:
    """Classes generated at all, and KL(generated class histogram || the data's)."""
    h_gen = np.bincount(pred, minlength=num_classes).astype(np.float64)
    h_real = np.bincount(real_labels, minlength=num_classes).astype(np.float64)
    p, q = h_gen / h_gen.sum(), h_real / h_real.sum()
    nz = p > 0
    kl = float((p[nz] * np.log(p[nz] / np.maximum(q[nz], 1e-12))).sum())
    return {"classes_covered": int((h_gen > 0).sum()), "num_classes": num_classes, "class_kl": kl,
            "class_min_frac": float(p.min()), "class_max_frac": float(p.max())}


def mode_stats(points: np.ndarray, centres: np.ndarray, std: float) -> dict[str, float]:
    """The VEEGAN / PacGAN 2D protocol.

    A sample is high quality when within 3 std of its nearest centre; a mode is captured
    when at least one high-quality sample is nearest to it; reverse KL compares the
    high-quality samples' mode histogram with uniform.
    """
    pts = np.asarray(points, np.float64)
    ok = np.isfinite(pts).all(1)
    d = np.linalg.norm(pts[ok, None, :] - centres[None], axis=2)
    nearest = d.argmin(1)
    hq = d[np.arange(len(nearest)), nearest] <= 3 * std
    k = len(centres)
    counts = np.bincount(nearest[hq], minlength=k).astype(np.float64)
    modes = int((counts > 0).sum())
    if counts.sum() > 0:
        p = counts / counts.sum()
        nz = p > 0
        rkl = float((p[nz] * np.log(p[nz] * k)).sum())
    else:
        rkl = float("inf")
    return {"modes": modes, "num_modes": k, "high_quality": float(hq.sum() / len(pts)), "reverse_kl": rkl}


def _kl_from_uniform(counts: np.ndarray) -> float:
    p = counts.astype(np.float64) / counts.sum()
    nz = p > 0
    return float((p[nz] * np.log(p[nz] * len(p))).sum())


def stacked_modes(pred_digits: np.ndarray) -> dict[str, Any]:
    """Stacked MNIST: pred_digits [N, 3] -> modes captured out of 1000, KL(hist || uniform), and
    each channel's digit-histogram KL from uniform over 10 (what of the KL the marginals explain)."""
    m = pred_digits[:, 0] * 100 + pred_digits[:, 1] * 10 + pred_digits[:, 2]
    counts = np.bincount(m, minlength=1000)
    return {"modes": int((counts > 0).sum()), "num_modes": 1000, "kl": _kl_from_uniform(counts),
            "channel_kl": [_kl_from_uniform(np.bincount(pred_digits[:, c], minlength=10)) for c in range(3)]}
