"""A VAE trained by the same loop: decoder = an architecture's generator, encoder = its
discriminator body with a 2*z_dim head (mean and log-variance).

All terms are in nats per image. The Gaussian likelihood lives on pixels in [-1, 1]
(a continuous density, so its ELBO is comparable only between runs on the same data
scale); the Bernoulli one on intensities (x + 1) / 2 in [0, 1].
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import VAEConfig

LOGVAR_RANGE = (-30.0, 20.0)


def encode(E: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, C, H, W] -> mean [N, z], log-variance [N, z]."""
    mu, logvar = E(x).float().chunk(2, dim=1)
    return mu, logvar.clamp(*LOGVAR_RANGE)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, gen: torch.Generator | None = None,
                   n: int | None = None, rows: slice = slice(None)) -> torch.Tensor:
    """z = mu + eps * sigma; eps drawn for a global batch of `n` (default: this one), of which these are `rows`."""
    eps = torch.randn((n or mu.shape[0], *mu.shape[1:]), generator=gen, dtype=mu.dtype)[rows].to(mu.device)
    return mu + eps * torch.exp(0.5 * logvar)


def vae_terms(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, cfg: VAEConfig) -> dict[str, torch.Tensor]:
    """Per-image reconstruction NLL and KL(q(z|x) || N(0, I)), averaged over the batch.

    Returns `recon`, `kl`, `elbo` (= -(recon + kl)) and `sigma` (the Gaussian std used).
    """
    x, recon = x.float().flatten(1), recon.float().flatten(1)
    d = x.shape[1]
    if cfg.likelihood == "gaussian":
        sq = (x - recon).pow(2)
        if cfg.sigma > 0:
            log_sigma = torch.tensor(math.log(cfg.sigma), device=x.device)
        else:  # sigma-VAE: the maximum-likelihood shared std, sqrt(MSE), kept away from 0
            log_sigma = 0.5 * torch.log(sq.mean().clamp_min(1e-6))
        nll = 0.5 * sq.sum(1) / torch.exp(2 * log_sigma) + d * (log_sigma + 0.5 * math.log(2 * math.pi))
        sigma = torch.exp(log_sigma).detach()
    else:
        t = (x + 1) / 2
        q = ((recon + 1) / 2).clamp(1e-6, 1 - 1e-6)
        nll = -(t * torch.log(q) + (1 - t) * torch.log1p(-q)).sum(1)
        sigma = torch.zeros((), device=x.device)
    kl = 0.5 * (mu.pow(2) + torch.exp(logvar) - 1 - logvar).sum(1)
    rec, kl = nll.mean(), kl.mean()
    return {"recon": rec, "kl": kl, "elbo": -(rec + kl), "sigma": sigma}


def kl_weight(cfg: VAEConfig, step: int) -> float:
    return cfg.beta * (min(1.0, step / cfg.kl_warmup) if cfg.kl_warmup else 1.0)


@torch.no_grad()
def reconstruct(E: nn.Module, G: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Decode the posterior mean of each image."""
    mu, _ = encode(E, x)
    return G(mu, None).float().clamp(-1, 1)


def reconstruction_rows(E: nn.Module, G: nn.Module, x: torch.Tensor, row: int = 8) -> torch.Tensor:
    """Images `x` and their reconstructions (E in eval mode, on the CPU) as a grid's rows: `row` real
    images, then their `row` reconstructions, and so on (for the report and `gankit sample --reconstruct`)."""
    from .layers import evaluating

    with evaluating(E), torch.no_grad():
        r = reconstruct(E, G, x).cpu()
    x = x.cpu().float()
    return torch.cat([t for i in range(0, len(x), row) for t in (x[i:i + row], r[i:i + row])])
