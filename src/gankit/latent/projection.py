"""Projection: find the latent whose image matches a real one.

Adam on the latent (z; StyleGAN2's w, or per-layer w+) with a warm-up and a cosine ramp-down of
the learning rate, minimising a pixel distance plus a perceptual one (`metrics.perceptual`). Where
it starts: in z the nearest (in pixels) of `start_samples` random latents, per class when the class
of a conditional generator is not given (the class of the nearest is taken); in w the mean w (of
the class when given), as StyleGAN2-ADA's projector does, with decaying noise added to w early on;
a VAE's latent from its encoder's mean when the encoder is there. Where the generator has noise
inputs with a fixed draw (StyleGAN2, FastGAN) the noise maps are optimised too, from that draw,
with StyleGAN2's regulariser (their autocorrelation at one-pixel shifts, at every scale down to
8x8, pushed to zero) and renormalised to zero mean and unit variance after each step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..console import Progress
from ..errors import GankitError
from ..metrics.perceptual import pixel_distance
from .space import LatentSpace

START_SAMPLES = 64


@dataclass
class Options:
    steps: int = 300
    lr: float = 0.1
    perceptual: str = "inception"  # "inception" or "none"
    perceptual_weight: float = 1.0
    w_plus: bool = False  # w: one w per style layer
    noise: bool = True  # optimise the noise maps of generators that have them
    noise_weight: float = 1e3  # the noise maps' autocorrelation penalty
    z_prior: float = 1e-2  # z: pulls |z|^2 / dim towards 1 (the prior's shell)
    start_samples: int = START_SAMPLES
    w_noise: float = 0.05  # w: noise of this share of w's spread added to w, decaying to none at 3/4 of the steps
    seed: int = 0

    def check(self) -> None:
        if self.steps < 0:
            raise GankitError(f"steps: must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise GankitError(f"lr: must be > 0, got {self.lr}")
        if self.perceptual not in ("inception", "none"):
            raise GankitError(f"perceptual: inception or none, got {self.perceptual!r}")
        if self.start_samples < 1:
            raise GankitError(f"start_samples: at least 1, got {self.start_samples}")


@dataclass
class Projection:
    """What a projection found, per image: `latent` [N, dim] (w+: [N, layers, dim]) in `space`, the
    class `labels` [N] (conditional z), the `noise` maps (generators with noise inputs), the
    reconstructions and the targets (float [-1, 1] [N, C, H, W]), the final `pixel` and `perceptual`
    distances [N], and `history`: the mean distances every few steps."""

    space: str
    latent: torch.Tensor
    labels: torch.Tensor | None
    noise: list[torch.Tensor] | None
    images: torch.Tensor
    targets: torch.Tensor
    pixel: torch.Tensor
    perceptual: torch.Tensor | None
    start: str
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)


def learning_rate(t: float, base: float) -> float:
    """A 5% linear warm-up, then flat, then a cosine ramp-down over the last quarter (t in [0, 1])."""
    up = min(1.0, t / 0.05)
    down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / 0.25))
    return base * up * down


def noise_penalty(maps: list[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation at one-pixel shifts (both axes) of each noise map, at its size and each
    2x smaller one down to 8x8, summed; per image [N]."""
    total = 0
    for n in maps:
        while True:
            total = total + (n * n.roll(1, 3)).mean((1, 2, 3)).square() + (n * n.roll(1, 2)).mean((1, 2, 3)).square()
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return total


def _nearest_start(space: LatentSpace, targets: torch.Tensor, labels: torch.Tensor | None, o: Options
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The nearest of `start_samples` random z per image (and, conditional without labels, over every class)."""
    gen = torch.Generator().manual_seed(o.seed)
    z = space.draw(o.start_samples, gen)
    classes = [None] if not space.num_classes else ([None] if labels is not None else list(range(space.num_classes)))
    best = torch.full((len(targets),), float("inf"))
    best_z = torch.zeros(len(targets), space.dim)
    best_y = labels.clone() if labels is not None else (torch.zeros(len(targets), dtype=torch.long) if space.num_classes else None)
    with torch.no_grad():
        for c in classes:
            for i in range(len(targets)):
                y = None
                if space.num_classes:
                    y = torch.full((len(z),), int(labels[i] if c is None else c), dtype=torch.long, device=z.device)
                d = pixel_distance(space.render(z, y), targets[i:i + 1].to(z.device)).cpu()
                j = int(d.argmin())
                if d[j] < best[i]:
                    best[i], best_z[i] = d[j], z[j].cpu()
                    if c is not None:
                        best_y[i] = c
    return best_z, best_y


def project(space: LatentSpace, targets: torch.Tensor, labels: torch.Tensor | None = None, options: Options | None = None,
            perceptual: torch.nn.Module | None = None, start: torch.Tensor | None = None, progress: bool = True,
            on_step: Callable[[int, dict[str, float]], None] | None = None) -> Projection:
    """Project `targets` (float [-1, 1] [N, C, H, W], the generator's size) into `space`. `labels` [N]:
    the classes of a conditional generator (found when None); `perceptual`: the distance network
    (built from `options.perceptual` when None); `start`: latents to start from (a VAE encoder's mean);
    `on_step(step, distances)`: called every few steps (a progress display)."""
    o = options or Options()
    o.check()
    dev = space.device
    targets = targets.float().to(dev)
    n = len(targets)
    if targets.dim() != 4:
        raise GankitError(f"targets: expected images [N, C, H, W], got {list(targets.shape)}")
    if labels is not None:
        labels = labels.long().to(dev)
        if space.num_classes == 0:
            raise GankitError("label: the generator is unconditional")
        if labels.shape != (n,) or int(labels.min()) < 0 or int(labels.max()) >= space.num_classes:
            raise GankitError(f"labels: expected {n} classes in 0..{space.num_classes - 1}, got {labels.tolist()}")
    if perceptual is None and o.perceptual == "inception":
        from ..metrics.perceptual import InceptionDistance

        perceptual = InceptionDistance()
    if perceptual is not None:
        perceptual.requires_grad_(False)
        with torch.no_grad():
            target_feats = perceptual.features(targets)

    w_std = 0.0
    if start is not None:
        how = "given"
        latent = start.detach().float().to(dev).clone()
    elif space.name == "z":
        how = f"nearest of {o.start_samples} random latents" + (" per class" if space.num_classes and labels is None else "")
        latent, labels = _nearest_start(space, targets, labels, o)
        latent = latent.to(dev)
        labels = labels.to(dev) if labels is not None else None
    else:
        how = "mean w" + (" of the class" if labels is not None else "")
        latent = torch.stack([space.mean(None if labels is None else int(c)) for c in (labels if labels is not None else [None] * n)])
        draws = space.draw(2000, torch.Generator().manual_seed(o.seed)).float()
        w_std = float((draws - draws.mean(0)).square().sum(1).mean().sqrt())
    if space.name == "w" and o.w_plus and latent.dim() == 2:
        latent = latent.unsqueeze(1).repeat(1, space.layers, 1)
    space.check(latent, "start")
    latent = latent.requires_grad_(True)
    maps = [m.to(dev).requires_grad_(True) for m in space.fixed_noise(n)] if o.noise and space.noise_layers() else None
    opt = torch.optim.Adam([latent] + (maps or []), lr=o.lr, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(o.seed + 1)
    history: list[dict[str, float]] = []
    every = max(1, o.steps // 20)
    bar = Progress(o.steps, "projecting", "step") if progress and o.steps else None

    def distances(lat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        with space.with_noise(maps):
            img = space.render(lat, labels)
        pix = pixel_distance(img, targets)
        per = perceptual(img, target_feats) if perceptual is not None else None
        return img, pix, per

    for step in range(o.steps):
        t = step / o.steps
        for g in opt.param_groups:
            g["lr"] = learning_rate(t, o.lr)
        lat = latent
        if w_std and o.w_noise:
            scale = w_std * o.w_noise * max(0.0, 1.0 - t / 0.75) ** 2
            lat = latent + torch.randn(latent.shape, generator=gen).to(dev) * scale
        _, pix, per = distances(lat)
        loss = pix + (o.perceptual_weight * per if per is not None else 0)
        if maps is not None:
            loss = loss + o.noise_weight * noise_penalty(maps)
        if space.name == "z" and o.z_prior:
            loss = loss + o.z_prior * (latent.square().mean(1) - 1).square()
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if maps is not None:
            with torch.no_grad():
                for m in maps:
                    m.sub_(m.mean((1, 2, 3), keepdim=True)).div_(m.square().mean((1, 2, 3), keepdim=True).sqrt() + 1e-8)
        if step % every == 0 or step == o.steps - 1:
            rec = {"step": step, "pixel": float(pix.detach().mean())}
            if per is not None:
                rec["perceptual"] = float(per.detach().mean())
            history.append(rec)
            if on_step is not None:
                on_step(step, rec)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    with torch.no_grad():
        img, pix, per = distances(latent)
    history.append({"step": o.steps, "pixel": float(pix.mean()), **({"perceptual": float(per.mean())} if per is not None else {})})
    return Projection(space.name + ("+" if latent.dim() == 3 else ""), latent.detach().cpu(), None if labels is None else labels.cpu(),
                      None if maps is None else [m.detach().cpu() for m in maps], img.detach().float().cpu(), targets.cpu(),
                      pix.detach().cpu(), None if per is None else per.detach().cpu(), how, o.steps, history)


def summary(p: Projection) -> dict[str, Any]:
    """The distances of a projection, for JSON."""
    return {"space": p.space, "start": p.start, "steps": p.steps, "pixel_mse": p.pixel.tolist(),
            "perceptual": None if p.perceptual is None else p.perceptual.tolist(),
            "labels": None if p.labels is None else p.labels.tolist(), "history": p.history}
