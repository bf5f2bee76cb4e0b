"""Semantic directions in a latent space, and edits along them.

- **SeFa** (Shen & Zhou 2021, closed-form factorisation): the directions that the first weights
  acting on the latent, A [out, dim], stretch most: A's top right-singular vectors. In z these are
  the first layer's columns for z; in StyleGAN2's w, every style conv's affine map stacked, toRGB
  left out (as the paper does for StyleGAN).
- **GANSpace** (Härkönen et al. 2020): the principal axes of sampled latents. It applies where the
  latents are not isotropic: StyleGAN2's w. In z, which is N(0, I), the paper takes the principal
  axes of the first layer's output and maps them back to z by regression; when that first layer is
  linear (every gankit architecture), this gives A's right-singular vectors again, i.e. SeFa, so
  gankit offers GANSpace for w only.

A direction is a unit vector v in the space with `std`, the spread of the prior's latents along it
(1 in z; measured from sampled w in w). An edit of `amount` a moves a latent by a * std * v, added to
every layer of a w+ latent; amount 0 leaves it as it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..errors import GankitError
from .space import MEAN_SAMPLES, LatentSpace

METHODS = ("sefa", "ganspace")
DEFAULT_K = 8
GANSPACE_SAMPLES = 10_000


@dataclass
class Directions:
    method: str
    space: str  # "z" or "w"
    vectors: torch.Tensor  # [K, dim], unit rows, strongest first
    std: torch.Tensor  # [K]: the prior's spread along each
    values: torch.Tensor  # [K]: singular values (sefa) or variances (ganspace)

    def __len__(self) -> int:
        return len(self.vectors)

    def offset(self, k: int, amount: float | torch.Tensor) -> torch.Tensor:
        """The latent offset [dim] of `amount` standard deviations along direction `k`."""
        if not 0 <= k < len(self):
            raise GankitError(f"direction: must be 0..{len(self) - 1} ({len(self)} {self.method} directions), got {k}")
        return amount * self.std[k] * self.vectors[k]

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "space": self.space, "vectors": self.vectors.tolist(),
                "std": self.std.tolist(), "values": self.values.tolist()}

    @classmethod
    def from_json(cls, d: dict[str, Any], dim: int | None = None, where: str = "directions") -> Directions:
        try:
            v = torch.tensor(d["vectors"], dtype=torch.float32)
            out = cls(str(d["method"]), str(d["space"]), v, torch.tensor(d["std"], dtype=torch.float32),
                      torch.tensor(d["values"], dtype=torch.float32))
        except (KeyError, TypeError, ValueError) as e:
            raise GankitError(f"{where}: not a readable set of directions ({str(e)[:120]})") from None
        if v.dim() != 2 or (dim is not None and v.shape[1] != dim) or out.std.shape != (len(v),) or out.values.shape != (len(v),):
            raise GankitError(f"{where}: vectors {list(v.shape)}, std {list(out.std.shape)} do not fit a {dim}-wide latent")
        return out


def _spread(space: LatentSpace, vectors: torch.Tensor) -> torch.Tensor:
    """The prior's standard deviation along each unit row of `vectors`."""
    if space.name == "z":
        return torch.ones(len(vectors))
    w = space.draw(MEAN_SAMPLES, torch.Generator().manual_seed(0)).float().cpu()
    return (w - w.mean(0)).matmul(vectors.T).std(0)


def _canonical_sign(vectors: torch.Tensor) -> torch.Tensor:
    """Singular vectors are defined up to sign: make each one's largest entry positive (reproducible)."""
    idx = vectors.abs().argmax(1)
    return vectors * vectors.gather(1, idx[:, None]).sign()


def sefa(space: LatentSpace, k: int = DEFAULT_K) -> Directions:
    """The top-k right-singular vectors of the first weights acting on the latent."""
    A = space.weight().double()
    _, s, vh = torch.linalg.svd(A, full_matrices=False)
    k = min(k, len(s))
    vectors = _canonical_sign(vh[:k].float())
    return Directions("sefa", space.name, vectors, _spread(space, vectors), s[:k].float())


def ganspace(space: LatentSpace, k: int = DEFAULT_K, n: int = GANSPACE_SAMPLES, seed: int = 0) -> Directions:
    """The principal axes of n sampled w (StyleGAN2), largest variance first."""
    if space.name != "w":
        raise GankitError("ganspace: applies to a mapping network's w (stylegan2); in z, which is N(0, I), it gives "
                          "the same directions as sefa (its first layer is linear): use --method sefa")
    w = space.draw(n, torch.Generator().manual_seed(seed)).double().cpu()
    w = w - w.mean(0)
    _, s, vh = torch.linalg.svd(w, full_matrices=False)
    k = min(k, len(s))
    vectors = _canonical_sign(vh[:k].float())
    var = (s[:k].square() / (n - 1)).float()
    return Directions("ganspace", "w", vectors, var.sqrt(), var)


def find_directions(space: LatentSpace, method: str = "sefa", k: int = DEFAULT_K) -> Directions:
    if method not in METHODS:
        raise GankitError(f"method: {' or '.join(METHODS)}, got {method!r}")
    if k < 1:
        raise GankitError(f"k: at least 1 direction, got {k}")
    return sefa(space, k) if method == "sefa" else ganspace(space, k)


def edit(space: LatentSpace, latent: torch.Tensor, dirs: Directions, k: int, amount: float) -> torch.Tensor:
    """`latent` moved `amount` standard deviations along direction `k` ([N, dim] or w+ [N, layers, dim])."""
    if dirs.space != space.name:
        raise GankitError(f"directions: found in {dirs.space}, but this generator's latents are in {space.name}")
    space.check(latent)
    off = dirs.offset(k, amount).to(latent.device, latent.dtype)
    return latent + (off if latent.dim() == 2 else off[None, None])


@torch.no_grad()
def strips(space: LatentSpace, dirs: Directions, latents: torch.Tensor, y: torch.Tensor | None = None,
           steps: int = 7, span: float = 3.0) -> torch.Tensor:
    """Images [K * N * steps, C, H, W]: for each direction, each of the N `latents` moved from -span to
    +span standard deviations in `steps` steps (a row per latent and direction)."""
    amounts = torch.linspace(-span, span, steps)
    rows = []
    for k in range(len(dirs)):
        for i in range(len(latents)):
            lat = torch.stack([edit(space, latents[i:i + 1], dirs, k, float(a))[0] for a in amounts])
            yy = None if y is None else y[i:i + 1].repeat(steps)
            rows.append(space.render(lat, yy).float().cpu())
    return torch.cat(rows)
