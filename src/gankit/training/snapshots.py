"""Snapshots of a 2D GAN for the live view (GAN Lab's picture, from the real training): real and
generated points, D's output over the plane, and the direction G's gradient moves generated points.

One small JSON line per snapshot in `snapshots.jsonl` (about 25 KB). Taken by rank 0 with both
networks in eval mode and their own random stream, so training is not changed by watching it.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data import Dataset
from ..losses import Loss, generator_loss
from ..models.layers import evaluating

N_POINTS = 240  # real and generated points shown (a multiple of every usual PacGAN pack)
N_ARROWS = 80
FIELD = 40  # D is evaluated on a FIELD x FIELD grid over the plane
CENTRE = {"ns": 0.0, "hinge": 0.0, "lsgan": 0.5}  # D's output halfway between "real" and "generated"


class Snapshots:
    def __init__(self, ds: Dataset, z_dim: int, num_classes: int, loss_name: str, loss: Loss, pac: int, seed: int):
        gen = torch.Generator().manual_seed(seed)
        self.real = ds.x[torch.randperm(len(ds), generator=gen)[:N_POINTS]].float()
        self.z = torch.randn(N_POINTS, z_dim, generator=gen)
        # a conditional D judges every point as class 0 (a plane has no labels)
        self.y = (torch.arange(N_POINTS) % num_classes) if num_classes else None
        self.num_classes, self.loss_name, self.loss, self.pac = num_classes, loss_name, loss, pac
        lo, hi = self.real.min(0).values, self.real.max(0).values
        c, half = (lo + hi) / 2, float((hi - lo).max()) * 0.65 + 1e-3
        self.bounds = [float(c[0] - half), float(c[0] + half), float(c[1] - half), float(c[1] + half)]
        xs = torch.linspace(self.bounds[0], self.bounds[1], FIELD)
        ys = torch.linspace(self.bounds[2], self.bounds[3], FIELD)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # row i: y, column j: x
        self.plane = torch.stack([gx.flatten(), gy.flatten()], 1)

    def _d(self, D: nn.Module, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if self.pac > 1:  # each point judged as a pack of copies of itself
            x = x.repeat_interleave(self.pac, 0).reshape(n, self.pac * x.shape[1])
        y = torch.zeros(n, dtype=torch.long, device=x.device) if self.num_classes else None
        return D(x, y).float()

    def __call__(self, G: nn.Module, D: nn.Module, device: torch.device, step: int) -> dict[str, Any]:
        with evaluating(G, D):
            with torch.no_grad():
                fake = G(self.z.to(device), self.y.to(device) if self.y is not None else None).float()
                field = self._d(D, self.plane.to(device)).reshape(FIELD, FIELD)
            x = fake[:N_ARROWS].detach().requires_grad_(True)
            loss_g = generator_loss(self.loss, self._d(D, x), lambda: self._d(D, self.real[:N_ARROWS].to(device)).detach())
            (grad,) = torch.autograd.grad(loss_g, x)  # only x's gradient: D's .grad untouched
        centre = CENTRE.get(self.loss_name, float(field.median()))

        def r(t: torch.Tensor) -> list:
            return [[round(float(v), 4) for v in row] for row in t.detach().cpu()]

        return {"step": step, "bounds": [round(b, 4) for b in self.bounds], "centre": centre, "real": r(self.real), "fake": r(fake),
                "field": r(field), "grad": r(-grad * N_ARROWS)}  # the way G's loss moves each point (per-point scale)
