"""Sampling policy, kept apart from the generator: latents, truncation, labels, interpolation."""
from __future__ import annotations

import torch
from torch import nn

from ..console import Progress
from ..errors import GankitError
from ..models.layers import evaluating

PROGRESS_FROM = 5000  # samples: fewer take a moment, more get a progress bar


def truncation_of(G: nn.Module, psi: float) -> tuple[float, dict]:
    """How truncation psi applies to G: (the factor on z, G's keyword arguments). Most generators
    scale z; one with a mapping network (`truncates_w`, StyleGAN2) pulls w towards its mean."""
    if getattr(G, "truncates_w", False):
        return 1.0, ({"truncation": psi} if psi != 1.0 else {})
    return psi, {}


def latents(n: int, z_dim: int, gen: torch.Generator, truncation: float = 1.0) -> torch.Tensor:
    """Standard normal latents, scaled by psi = `truncation` (< 1 trades variety for quality)."""
    z = torch.randn(n, z_dim, generator=gen)
    return z * truncation if truncation != 1.0 else z


def resolve_label(label: int | str | None, num_classes: int, class_names: list[str], what: str = "label") -> int | None:
    """A class given by index or by name (a digit string counts as an index unless it is a class
    name), checked against the model's classes; None stays None."""
    if label is None:
        return None
    if not num_classes:
        raise GankitError(f"{what}: the model is unconditional (it was trained without class labels)")
    if isinstance(label, str) and label in class_names:
        return class_names.index(label)
    if isinstance(label, str) and not label.lstrip("-").isdigit():
        named = f"; the classes are {', '.join(class_names)}" if class_names else ""
        raise GankitError(f"{what}: unknown class {label!r}{named}")
    if not 0 <= int(label) < num_classes:
        named = f"; or a class name ({', '.join(class_names)})" if class_names else ""
        raise GankitError(f"{what}: must be 0..{num_classes - 1} (the model has {num_classes} classes), got {label}{named}")
    return int(label)


def balanced_labels(n: int, num_classes: int) -> torch.Tensor | None:
    """0,1,...,K-1,0,1,... so a grid shows every class in turn; None when unconditional."""
    return torch.arange(n) % num_classes if num_classes else None


@torch.no_grad()
def recalibrate_bn(G: nn.Module, z_dim: int, num_classes: int, device: torch.device, batches: int = 8, batch: int = 256, seed: int = 1234) -> None:
    """Recompute BatchNorm running statistics for averaged weights (G_ema), deterministically.

    Averaged weights do not match the raw G's running statistics; a few forward passes in
    train mode with a cumulative average fix that (the SWA "bn_update" recipe).
    """
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [(m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
        m.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        z = torch.randn(batch, z_dim, generator=gen).to(device)
        y = torch.randint(0, num_classes, (batch,), generator=gen).to(device) if num_classes else None
        G(z, y)
    for m, (mom, tr) in zip(bns, saved):
        m.momentum = mom
        m.train(tr)


@torch.no_grad()
def forward_batches(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None, device: torch.device, batch: int = 500,
                    truncation: float = 1.0) -> torch.Tensor:
    """G(z, y) in eval mode, `batch` rows at a time (a progress bar from PROGRESS_FROM rows), on the CPU;
    `truncation` for a generator that truncates in W (z is used as given: scale it for the others)."""
    _, kw = truncation_of(G, truncation)
    out = []
    bar = Progress(len(z), "generating", "img") if len(z) >= PROGRESS_FROM else None
    with evaluating(G):
        for i in range(0, len(z), batch):
            yb = y[i:i + batch].to(device) if y is not None else None
            out.append(G(z[i:i + batch].to(device), yb, **kw).float().cpu())
            if bar is not None:
                bar.update(len(out[-1]))
    if bar is not None:
        bar.close()
    return torch.cat(out)


def generate(G: nn.Module, n: int, z_dim: int, num_classes: int, device: torch.device, seed: int = 0,
             truncation: float = 1.0, label: int | None = None, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples from G in eval mode, on the CPU; labels balanced (or all `label`)."""
    scale, _ = truncation_of(G, truncation)
    z = latents(n, z_dim, torch.Generator().manual_seed(seed), scale)
    if num_classes:
        y = torch.full((n,), label, dtype=torch.long) if label is not None else balanced_labels(n, num_classes)
    else:
        y = None
    return forward_batches(G, z, y, device, batch, truncation), y


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between latent vectors (keeps Gaussian norms plausible)."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:
        return (1 - t) * a + t * b
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def interpolation_path(keys: int, steps_between: int, z_dim: int, gen: torch.Generator, rows: int = 1) -> list[torch.Tensor]:
    """Latent frames looping through `keys` random key points: list of [rows, z_dim]."""
    pts = torch.randn(keys, rows, z_dim, generator=gen)
    frames = []
    for k in range(keys):
        a, b = pts[k], pts[(k + 1) % keys]
        for s in range(steps_between):
            frames.append(slerp(a, b, s / steps_between))
    return frames

