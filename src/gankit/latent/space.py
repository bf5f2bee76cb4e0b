"""Where a generator's latents live, and how an image is made from one.

Two kinds of space: **z**, the generator's input (DCGAN, ResNet, R3GAN, FastGAN, a VAE's decoder;
a conditional one takes the class beside it), and **w**, the output of StyleGAN2's mapping network,
where its class is already folded in. A latent is [N, dim]; in w it may also be per layer,
[N, layers, dim] ("w+": each style layer its own w). Projection, directions and edits all go
through `LatentSpace`, so none of them needs to know an architecture's insides beyond two
things an architecture offers: `latent_weight()` (the first weights acting on the latent) and
noise inputs with a fixed draw (`fixed_draw`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import GankitError
from ..models.layers import given_noise, noise_inputs

MEAN_SAMPLES = 2000  # draws for a class's mean w and for the spread of w along a direction


@dataclass
class LatentSpace:
    G: nn.Module
    name: str  # "z" or "w"
    dim: int
    layers: int  # per-layer latents a w+ latent has (1 in z)
    num_classes: int

    @classmethod
    def of(cls, G: nn.Module, what: str = "this generator") -> LatentSpace:
        if not hasattr(G, "z_dim") or getattr(G, "in_channels", 0):
            raise GankitError(f"{what}: a translation generator has no latent space (it turns images into images)")
        if getattr(G, "truncates_w", False) and hasattr(G, "synthesis") and hasattr(G, "mapping"):
            return cls(G, "w", int(G.w_dim), int(G.num_ws), int(G.num_classes))
        return cls(G, "z", int(G.z_dim), 1, int(G.num_classes))

    @property
    def per_layer(self) -> bool:
        return self.layers > 1

    def check(self, latent: torch.Tensor, what: str = "latent") -> torch.Tensor:
        ok = (latent.dim() == 2 and latent.shape[1] == self.dim) or (
            self.per_layer and latent.dim() == 3 and latent.shape[1:] == (self.layers, self.dim))
        if not ok:
            plus = f" or [N, {self.layers}, {self.dim}] (w+)" if self.per_layer else ""
            raise GankitError(f"{what}: expected a {self.name} latent of shape [N, {self.dim}]{plus}, got {list(latent.shape)}")
        return latent

    def render(self, latent: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The image of latents [N, dim] (or [N, layers, dim] in w), differentiable; in [-1, 1] up to
        StyleGAN2's and R3GAN's linear overshoot. `y`: labels, for a conditional generator in z."""
        if self.name == "w":
            ws = latent if latent.dim() == 3 else latent.unsqueeze(1).expand(-1, self.layers, -1)
            return self.G.synthesis(ws)
        if self.num_classes and y is None:
            raise GankitError("label: this generator is conditional; give the class of each latent")
        return self.G(latent, y)

    @torch.no_grad()
    def draw(self, n: int, gen: torch.Generator, y: torch.Tensor | None = None) -> torch.Tensor:
        """n latents from the prior: z ~ N(0, I), or their w through the mapping network."""
        dev = self.device
        z = torch.randn(n, self.G.z_dim, generator=gen).to(dev)
        if self.name == "z":
            return z
        if self.num_classes and y is None:
            y = torch.randint(0, self.num_classes, (n,), generator=gen)
        return self.G.mapping(z, None if y is None else y.to(dev))

    @torch.no_grad()
    def mean(self, label: int | None = None) -> torch.Tensor:
        """The latent a projection starts from: 0 in z; in w the tracked mean w (`w_avg`), or the mean w
        of `label`'s class."""
        if self.name == "z":
            return torch.zeros(self.dim, device=self.device)
        if label is None:
            return self.G.mapping.w_avg.detach().clone()
        y = torch.full((MEAN_SAMPLES,), int(label), dtype=torch.long)
        return self.draw(MEAN_SAMPLES, torch.Generator().manual_seed(0), y).mean(0)

    def weight(self) -> torch.Tensor:
        """The first weights acting on the latent [out, dim] (`latent_weight()` of the architecture)."""
        fn = getattr(self.G, "latent_weight", None)
        if fn is None:
            raise GankitError(f"{type(self.G).__module__}.{type(self.G).__name__}: has no latent_weight() (the first weights acting "
                              "on its latent), which directions need; add the method to the architecture")
        with torch.no_grad():
            return fn().detach().float().cpu()

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    def noise_layers(self) -> list[nn.Module]:
        """G's noise inputs that use a fixed draw at inference (StyleGAN2's and FastGAN's)."""
        return [m for m in noise_inputs(self.G) if getattr(m, "fixed_draw", None)]

    def fixed_noise(self, n: int) -> list[torch.Tensor]:
        """The fixed draws as [n, 1, H, W] maps, one per noise layer (the start of a noise projection)."""
        return [getattr(m, m.fixed_draw).detach().float()[None, None].repeat(n, 1, 1, 1) for m in self.noise_layers()]

    def with_noise(self, maps: list[torch.Tensor] | None):
        """A context in which the noise layers use `maps` (None: their fixed draws)."""
        from contextlib import nullcontext

        return nullcontext() if maps is None else given_noise(self.noise_layers(), maps)
