"""What changes over a run, step by step: the learning rates (`train.lr_decay`), and R3GAN's
annealing (`schedule` section: learning rates, Adam's beta2, the penalty weights and the
augmentation probability move from their start to their end values on a half cosine over
`schedule.images` images shown to D, then stay there; Huang et al. 2024, as in their training code).

Start values are the run's own (`train.lr_g`, `loss.r1`, ...), read from `p.cfg` at every step,
so a rollback that lowered the learning rates lowers the whole schedule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import Config


@dataclass(frozen=True)
class Now:
    """The values of this step."""

    lr_g: float
    lr_d: float
    beta2_g: float
    beta2_d: float
    r1: float
    r2: float
    gp: float
    augment_p: float | None  # None: the augmenter's own p (fixed or adaptive)


def decay_factor(kind: str, step: int, total: int) -> float:
    """`train.lr_decay`: the learning rates' factor at `step` of `total`."""
    t = min(step / total, 1.0)
    if kind == "linear":
        return 1.0 - t
    if kind == "half_linear":  # pix2pix and CycleGAN: constant, then linearly to 0 over the second half
        return min(1.0, 2.0 * (1.0 - t))
    if kind == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    return 1.0


def anneal(start: float, end: float, images: int, over: int) -> float:
    """From `start` at 0 images to `end` at `over` images on a half cosine, then `end`."""
    if over <= 0:
        return start
    t = min(images / over, 1.0)
    return start + (end - start) * 0.5 * (1 - math.cos(math.pi * t))


def values(cfg: Config, step: int, images: int) -> Now:
    t, s, loss = cfg.train, cfg.schedule, cfg.loss
    f = decay_factor(t.lr_decay, step, t.steps)
    lr = anneal(1.0, s.lr, images, s.images) * f
    pen = anneal(1.0, s.penalty, images, s.images)
    b2 = (lambda b: anneal(b, s.beta2, images, s.images)) if s.beta2 is not None else (lambda b: b)
    aug = anneal(cfg.augment.p, s.augment_p, images, s.images) if s.augment_p is not None else None
    return Now(t.lr_g * lr, t.lr_d * lr, b2(t.betas_g[1]), b2(t.betas_d[1]), loss.r1 * pen, loss.r2 * pen, loss.gp * pen, aug)


def apply(p) -> Now:
    """Set this step's values on the optimisers and the augmenter of run state `p`; returns them."""
    now = values(p.cfg, p.step, p.images)
    for opt, lr, b2 in ((p.opt_g, now.lr_g, now.beta2_g), (p.opt_d, now.lr_d, now.beta2_d)):
        for g in opt.param_groups:
            g["lr"] = lr
            g["betas"] = (g["betas"][0], b2)
    if now.augment_p is not None:
        p.augment.p = now.augment_p
    p.now = now
    return now
