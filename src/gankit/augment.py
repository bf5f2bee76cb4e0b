"""DiffAugment (Zhao et al. 2020) with an ADA-style adaptive probability (Karras et al. 2020).

The same differentiable ops are applied to real and generated images before every D
evaluation. Randomness comes from a dedicated generator so that runs resume exactly.
"""
from __future__ import annotations

import torch

from .config import AugmentConfig

Tensor = torch.Tensor


def _rand(gen: torch.Generator, n: int, device: torch.device, *shape: int) -> Tensor:
    return torch.rand((n, *shape), generator=gen).to(device)


def color(x: Tensor, gen: torch.Generator) -> Tensor:
    n, dev = x.shape[0], x.device
    x = x + (_rand(gen, n, dev, 1, 1, 1) - 0.5)  # brightness
    m = x.mean(1, keepdim=True)
    x = (x - m) * (_rand(gen, n, dev, 1, 1, 1) * 2) + m  # saturation
    m = x.mean((1, 2, 3), keepdim=True)
    return (x - m) * (_rand(gen, n, dev, 1, 1, 1) + 0.5) + m  # contrast


def _shift_gather(x: Tensor, sy: Tensor, sx: Tensor) -> Tensor:
    n, c, h, w = x.shape
    gy = torch.arange(h, device=x.device)[None, :, None] - sy[:, None, None]  # [N, H, 1]
    gx = torch.arange(w, device=x.device)[None, None, :] - sx[:, None, None]  # [N, 1, W]
    valid = ((gy >= 0) & (gy < h) & (gx >= 0) & (gx < w)).to(x.dtype)  # [N, H, W]
    idx = (gy.clamp(0, h - 1) * w + gx.clamp(0, w - 1)).reshape(n, 1, h * w).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, idx).reshape(n, c, h, w) * valid[:, None]


def translation(x: Tensor, gen: torch.Generator, ratio: float = 0.125) -> Tensor:
    n, _, h, w = x.shape
    my, mx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    sy = torch.randint(-my, my + 1, (n,), generator=gen).to(x.device)
    sx = torch.randint(-mx, mx + 1, (n,), generator=gen).to(x.device)
    return _shift_gather(x, sy, sx)


def cutout(x: Tensor, gen: torch.Generator, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n,), generator=gen).to(x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n,), generator=gen).to(x.device)
    yy = torch.arange(h, device=x.device)[None, :, None]
    xx = torch.arange(w, device=x.device)[None, None, :]
    inside = ((yy - cy[:, None, None]).abs() < ch / 2) & ((xx - cx[:, None, None]).abs() < cw / 2)
    return x * (~inside).to(x.dtype)[:, None]


OPS = {"color": color, "translation": translation, "cutout": cutout}


class Augmenter:
    """Applies the policy with per-image probability p; adapts p from r_t when asked."""

    INTERVAL = 4  # D steps between adjustments of p, as in ADA

    def __init__(self, cfg: AugmentConfig, batch_size: int, seed: int):
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
        mask = torch.rand(x.shape[0], generator=self.gen).to(x.device) < self.p
        y = x
        for op in self.ops:
            y = op(y, self.gen)
        return torch.where(mask[:, None, None, None], y, x)

    def observe(self, real_logits: Tensor) -> None:
        """Feed D(real) logits; every INTERVAL calls, move p towards r_t = target."""
        self._signs = self._signs + torch.sign(real_logits.detach().float()).sum()  # stays on the device
        self._count += real_logits.numel()
        if self._count >= self.INTERVAL * self.batch_size:  # read once per INTERVAL steps
            self.rt = float(self._signs) / self._count
            if self.cfg.adaptive:
                step = self._count / (self.cfg.speed_kimg * 1000)
                self.p = float(min(1.0, max(0.0, self.p + (step if self.rt > self.cfg.target else -step))))
            self._signs, self._count = 0.0, 0

    def state_dict(self) -> dict:
        return {"p": self.p, "rt": self.rt, "signs": float(self._signs), "count": self._count, "gen": self.gen.get_state()}

    def load_state_dict(self, s: dict) -> None:
        self.p, self.rt, self._signs, self._count = float(s["p"]), float(s["rt"]), float(s["signs"]), int(s["count"])
        self.gen.set_state(s["gen"])
