"""Adversarial losses (pure functions of D's logits) and regularisers (functions of D, and G's path length).

Each loss has a D side (minimised by D) and a G side (minimised by G).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .registry import Registry

LOSSES: Registry = Registry("loss", "loss.name")
Tensor = torch.Tensor


@dataclass(frozen=True)
class Loss:
    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[..., Tensor]  # g(fake_logits), or g(fake_logits, real_logits) when relativistic
    relativistic: bool = False  # G's side also compares with D's logits on real data, pair by pair


# non-saturating: D maximises log sigmoid(r) + log(1 - sigmoid(f)); G maximises log sigmoid(f)
LOSSES.register("ns")(Loss(
    d=lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),  # -log(sig(r)) - log(1 - sig(f))
    g=lambda f: F.softplus(-f).mean(),  # -log(sigmoid(D(G(z))))
))
# hinge (Lim & Ye 2017; SNGAN, BigGAN)
LOSSES.register("hinge")(Loss(
    d=lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(),  # max(0, 1-r) + max(0, 1+f)
    g=lambda f: -f.mean(),
))
# Wasserstein (Arjovsky et al. 2017): D is a critic, pair with loss.gp
LOSSES.register("wgan")(Loss(
    d=lambda r, f: f.mean() - r.mean(),
    g=lambda f: -f.mean(),
))
# least squares (Mao et al. 2017), targets real=1, fake=0
LOSSES.register("lsgan")(Loss(
    d=lambda r, f: 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean(),
    g=lambda f: 0.5 * ((f - 1) ** 2).mean(),
))


def generator_loss(loss: Loss, fake_logits: Tensor, real_logits: Callable[[], Tensor]) -> Tensor:
    """G's side of `loss`; `real_logits()` (D on the paired real batch) is computed only for a
    relativistic loss, which compares the two."""
    return loss.g(fake_logits, real_logits()) if loss.relativistic else loss.g(fake_logits)


# relativistic pairing (RpGAN, Jolicoeur-Martineau 2019; the loss of R3GAN, Huang et al. 2024): D judges
# each real sample against a generated one, softplus(-(D(x_r) - D(x_f))), and G the other way round;
# pairs are rows i of the real and generated batches
LOSSES.register("rpgan")(Loss(
    d=lambda r, f: F.softplus(f - r).mean(),  # -log sigmoid(r - f)
    g=lambda f, r: F.softplus(r - f).mean(),  # -log sigmoid(f - r)
    relativistic=True,
))


def d_accuracy(real_logits: Tensor, fake_logits: Tensor, relativistic: bool) -> Tensor:
    """D's accuracy: real logits above 0 and generated ones below; for a relativistic loss, whose
    logits have no fixed zero (only differences count), the share of pairs in which the real sample
    scores above its generated partner."""
    if relativistic:
        return (real_logits > fake_logits).float().mean()
    return 0.5 * ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean())


def rt_logits(real_logits: Tensor, fake_logits: Tensor, relativistic: bool) -> Tensor:
    """What ADA's overfitting heuristic r_t = E[sign(.)] reads: D's logits on real data; under a
    relativistic loss, whose logits have no fixed zero, the real-minus-generated pair differences
    (r_t = 2 x the pair accuracy - 1: 0 when D cannot tell, 1 when it ranks every pair right)."""
    return real_logits - fake_logits if relativistic else real_logits


def _grad_of(d_out: Tensor, x: Tensor) -> Tensor:
    (g,) = torch.autograd.grad(d_out.sum(), x, create_graph=True)
    return g.flatten(1)  # [N, features]


def gradient_penalty(D, real: Tensor, fake: Tensor, y: Tensor | None, eps: Tensor | None = None) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] on random interpolates
    (weights `eps` [N], drawn here unless given)."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, device=real.device, dtype=real.dtype) if eps is None else eps.to(real.device, real.dtype).view(shape)
    x = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    g = _grad_of(D(x, y), x)
    return ((g.norm(dim=1) - 1) ** 2).mean()


def r1_penalty(D, real: Tensor, y: Tensor | None) -> Tensor:
    """R1 (Mescheder et al. 2018): 0.5 * E[||grad D(x_real)||^2]."""
    x = real.detach().requires_grad_(True)
    g = _grad_of(D(x, y), x)
    return 0.5 * g.pow(2).sum(1).mean()


def r2_penalty(D, fake: Tensor, y: Tensor | None) -> Tensor:
    """R2 (Mescheder et al. 2018; with R1 in R3GAN): 0.5 * E[||grad D(x_fake)||^2], zero-centred on
    generated samples (given detached)."""
    return r1_penalty(D, fake, y)


def path_lengths(G, z: Tensor, y: Tensor | None, noise: Tensor) -> Tensor:
    """StyleGAN2's path lengths [N]: || J_w^T n || with n = `noise` / sqrt(H * W) (image-shaped
    standard normal draws) and J_w the Jacobian of G's synthesis by its styles w, averaged over layers."""
    ws = G.ws(z, y)
    img = G.synthesis(ws)
    n = noise.to(img.dtype) / math.sqrt(img.shape[2] * img.shape[3])
    (g,) = torch.autograd.grad((img * n).sum(), ws, create_graph=True)
    return g.float().square().sum(2).mean(1).sqrt()


def path_length_penalty(lengths: Tensor, target: Tensor | float) -> Tensor:
    """E[(||J_w^T n|| - a)^2], `a` the running mean of the path lengths (StyleGAN2, decay 0.01)."""
    return (lengths - target).square().mean()
