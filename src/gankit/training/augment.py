"""DiffAugment (Zhao et al. 2020) with an ADA-style adaptive probability (Karras et al. 2020).

The same differentiable ops are applied to real and generated images before every D
evaluation. Randomness comes from a dedicated generator so that runs resume exactly. In a
multi-process run each rank draws the parameters of the whole global batch and uses its own
rows, so augmentation is the same on any number of processes.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..config import AugmentConfig

Tensor = torch.Tensor


def _rand(gen: torch.Generator, n: int, rows: slice, device: torch.device, *shape: int) -> Tensor:
    """Uniform draws for a batch of `n`, of which this process keeps `rows`."""
    return torch.rand((n, *shape), generator=gen)[rows].to(device)


def color(x: Tensor, gen: torch.Generator, n: int, rows: slice) -> Tensor:
    dev = x.device
    x = x + (_rand(gen, n, rows, dev, 1, 1, 1) - 0.5)  # brightness
    m = x.mean(1, keepdim=True)
    x = (x - m) * (_rand(gen, n, rows, dev, 1, 1, 1) * 2) + m  # saturation
    m = x.mean((1, 2, 3), keepdim=True)
    return (x - m) * (_rand(gen, n, rows, dev, 1, 1, 1) + 0.5) + m  # contrast


def _shift_gather(x: Tensor, sy: Tensor, sx: Tensor) -> Tensor:
    n, c, h, w = x.shape
    gy = torch.arange(h, device=x.device)[None, :, None] - sy[:, None, None]  # [N, H, 1]
    gx = torch.arange(w, device=x.device)[None, None, :] - sx[:, None, None]  # [N, 1, W]
    valid = ((gy >= 0) & (gy < h) & (gx >= 0) & (gx < w)).to(x.dtype)  # [N, H, W]
    idx = (gy.clamp(0, h - 1) * w + gx.clamp(0, w - 1)).reshape(n, 1, h * w).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, idx).reshape(n, c, h, w) * valid[:, None]


def translation(x: Tensor, gen: torch.Generator, n: int, rows: slice, ratio: float = 0.125) -> Tensor:
    _, _, h, w = x.shape
    my, mx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    sy = torch.randint(-my, my + 1, (n,), generator=gen)[rows].to(x.device)
    sx = torch.randint(-mx, mx + 1, (n,), generator=gen)[rows].to(x.device)
    return _shift_gather(x, sy, sx)


def cutout(x: Tensor, gen: torch.Generator, n: int, rows: slice, ratio: float = 0.5) -> Tensor:
    _, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n,), generator=gen)[rows].to(x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n,), generator=gen)[rows].to(x.device)
    yy = torch.arange(h, device=x.device)[None, :, None]
    xx = torch.arange(w, device=x.device)[None, None, :]
    inside = ((yy - cy[:, None, None]).abs() < ch / 2) & ((xx - cx[:, None, None]).abs() < cw / 2)
    return x * (~inside).to(x.dtype)[:, None]


OPS = {"color": color, "translation": translation, "cutout": cutout}


class Augmenter:
    """Applies the policy with per-image probability p; adapts p from r_t when asked."""

    INTERVAL = 4  # D steps between adjustments of p, as in ADA

    def __init__(self, cfg: AugmentConfig, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.rank, self.world_size = rank, world_size
        self.ops = [OPS[o] for o in cfg.policy.split(",") if o]
        self.cfg = cfg
        self.p = 0.0 if cfg.adaptive else cfg.p
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(seed + 7919)
        self._signs, self._count = 0.0, 0
        self.rt = 0.0

    @property
    def active(self) -> bool:
        return bool(self.ops)

    def __call__(self, x: Tensor) -> Tensor:
        if not self.ops or x.dim() != 4:
            return x
        k = x.shape[0]  # this process's share of a global batch of k * world_size
        n, rows = k * self.world_size, slice(self.rank * k, (self.rank + 1) * k)
        mask = torch.rand(n, generator=self.gen)[rows].to(x.device) < self.p
        y = x
        for op in self.ops:
            y = op(y, self.gen, n, rows)
        return torch.where(mask[:, None, None, None], y, x)

    def observe(self, logits: Tensor, total: Callable[[list[float]], list[float]] = lambda v: v) -> None:
        """Feed the logits r_t reads (`losses.rt_logits`: D(real), or pair differences under a
        relativistic loss); every INTERVAL calls, move p towards r_t = target. `total` sums over
        processes (the world's `sum`), so that every rank reads the same r_t."""
        self._signs = self._signs + torch.sign(logits.detach().float()).sum()  # this rank's share, on the device
        self._count += logits.numel() * self.world_size  # the global count: the same on every rank
        if self._count >= self.INTERVAL * self.batch_size:  # read once per INTERVAL steps
            (signs,), count = total([float(self._signs)]), self._count
            self.rt = signs / count
            if self.cfg.adaptive:
                step = count / (self.cfg.speed_kimg * 1000)
                self.p = float(min(1.0, max(0.0, self.p + (step if self.rt > self.cfg.target else -step))))
            self._signs, self._count = 0.0, 0

    def state_dict(self, total: Callable[[list[float]], list[float]] = lambda v: v) -> dict:
        """The state of the whole run: the partial r_t sums of all processes added up (`total`)."""
        (signs,) = total([float(self._signs)])
        return {"p": self.p, "rt": self.rt, "signs": signs, "count": int(self._count), "gen": self.gen.get_state()}

    def load_state_dict(self, s: dict) -> None:
        """Any number of processes: the first holds the partial sum of signs, the others start from 0."""
        self.p, self.rt, self._count = float(s["p"]), float(s["rt"]), int(s["count"])
        self._signs = float(s["signs"]) if self.rank == 0 else 0.0
        self.gen.set_state(s["gen"])
