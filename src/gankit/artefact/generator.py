"""A trained generator as an object: `gankit.load(path)`, from an export folder (its format:
`exported.py`), a run folder or a checkpoint."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import GankitError
from .exported import FORMAT, FORMAT_VERSION, W_TRUNCATION, is_export
from .sampling import resolve_label


@dataclass
class Generator:
    """A trained generator. `sample` and `interpolate` give uint8 images [N, H, W, C] (float32
    points [N, 2] for 2D data); `net` is the PyTorch module (images in [-1, 1], NCHW)."""

    net: nn.Module
    meta: dict[str, Any] = field(repr=False)
    path: Path
    _found: dict[tuple[str, int], Any] = field(default_factory=dict, repr=False, compare=False)  # directions by (method, k)

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.meta.get("spec", {}).get("shape", []))) or "?"
        if self.kind == "pairs":
            t = self.meta.get("translation") or {}
            return (f"<gankit.Generator {self.meta.get('arch', '?')} translator {t.get('input_channels', '?')} -> "
                    f"{t.get('output_channels', '?')} channels ({', '.join(t.get('directions', []))}), step {self.step}, from {self.path}>")
        classes = f"{self.num_classes} classes" + (f" ({', '.join(self.class_names[:5])}{', ...' if self.num_classes > 5 else ''})"
                                                  if self.class_names else "") if self.num_classes else "unconditional"
        return f"<gankit.Generator {self.meta.get('arch', '?')} {self.kind} {shape}, {classes}, step {self.step}, from {self.path}>"

    @property
    def z_dim(self) -> int:
        return int(self.meta["z_dim"])

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("class_names") or [])

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def labels_for(self, n: int, label: int | str | None) -> torch.Tensor | None:
        """Labels for n samples: all `label` (an index or a class name), or classes in turn when None; None when unconditional."""
        k = resolve_label(label, self.num_classes, self.class_names)
        if not self.num_classes:
            return None
        return torch.arange(n) % self.num_classes if k is None else torch.full((n,), k, dtype=torch.long)

    @property
    def truncates_w(self) -> bool:
        """Truncation acts on w, the mapping network's output (StyleGAN2), rather than scaling z."""
        return bool(getattr(self.net, "truncates_w", False))

    def latents(self, n: int, seed: int = 0, truncation: float = 1.0) -> torch.Tensor:
        """The latents `sample(n, seed, truncation=...)` uses: N(0, I) draws, times `truncation`
        unless the generator truncates in W (then `generate(z, truncation=...)` applies it)."""
        from .sampling import latents, truncation_of

        if not 0 < truncation <= 2:
            raise GankitError(f"truncation: must be in (0, 2], got {truncation}")
        return latents(n, self.z_dim, torch.Generator().manual_seed(seed), truncation_of(self.net, truncation)[0])

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None, truncation: float = 1.0) -> torch.Tensor:
        """The network's raw output for latents `z` [N, z_dim] and labels `y` ([N] integers, or [N, K]
        class weights): images in [-1, 1] [N, C, H, W] (points [N, 2]), on the CPU. `truncation`
        applies only to a generator that truncates in W (`truncates_w`); scale z for the others."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise GankitError(f"z: expected shape [N, {self.z_dim}], got {list(z.shape)}")
        if self.num_classes and y is None:
            raise GankitError("y: this generator is conditional; give labels")
        from .sampling import forward_batches

        return forward_batches(self.net, z, y, self.device, truncation=truncation)

    def _draw(self, n: int, seed: int, label: int | str | None, truncation: float) -> torch.Tensor:
        if self.kind == "pairs":
            raise GankitError(f"{self.path}: a translation generator turns images into images; use translate(images)")
        if n < 1:
            raise GankitError(f"n: must be >= 1, got {n}")
        return self.generate(self.latents(n, seed, truncation), self.labels_for(n, label), truncation)

    def _finish(self, x: torch.Tensor) -> np.ndarray:
        from ..viz import to_uint8

        return x.numpy().astype(np.float32) if self.kind == "points" else to_uint8(x)

    def sample(self, n: int = 16, seed: int = 0, label: int | str | None = None, truncation: float = 1.0) -> np.ndarray:
        """n samples; classes in turn (or all `label`) for a conditional generator."""
        return self._finish(self._draw(n, seed, label, truncation))

    def grid(self, n: int = 16, seed: int = 0, label: int | str | None = None, truncation: float = 1.0, nrow: int | None = None):
        """`sample(...)` tiled into one picture (a PIL image; save it with `.save("grid.png")`)."""
        from ..viz import grid_image

        if self.kind != "image":
            raise GankitError("grid: a 2D generator gives points; use sample()")
        return grid_image(self._draw(n, seed, label, truncation), nrow=nrow)

    def interpolate(self, steps: int = 8, seed: int = 0, label: int | str | None = None, truncation: float = 1.0) -> np.ndarray:
        """`steps` samples along the great circle (slerp) from one seeded latent to another."""
        from .sampling import slerp

        if steps < 2:
            raise GankitError(f"steps: an interpolation needs at least 2, got {steps}")
        a, b = self.latents(2, seed, truncation)
        z = torch.stack([slerp(a, b, t / (steps - 1)) for t in range(steps)])
        return self._finish(self.generate(z, self.labels_for(steps, label if label is not None else (0 if self.num_classes else None)), truncation))


    def translate(self, images, tile: int = 512, overlap: int | None = None, direction: str = "AtoB") -> list[np.ndarray] | np.ndarray:
        """A translation generator's outputs for `images`: one uint8 array [H, W, C], a batch [N, H, W, C]
        of one size, or a list of arrays of any sizes (PIL images are taken too; they are converted to
        the input's channels as training data were). Each is translated at its own size, in tiles when it
        is larger than `tile` (`translation.translate_tensor`); `direction` BtoA: a CycleGAN's other generator.
        Returns the same form: uint8 [H, W, C]."""
        from PIL import Image

        from ..data.images import normalise_mode, to_array
        from .translation import translate_tensor, translator

        if self.kind != "pairs":
            raise GankitError(f"{self.path}: a generation generator has no input image; translate() needs a translation run (pix2pix, cyclegan)")
        net = translator(self.net, direction, "direction")
        c_in = int(net.in_channels)
        single = isinstance(images, Image.Image) or (isinstance(images, np.ndarray) and images.ndim in (2, 3))
        batch = [images] if single else list(images)
        out = []
        for i, im in enumerate(batch):
            if isinstance(im, Image.Image):
                im = to_array(normalise_mode(im), c_in).transpose(1, 2, 0)
            arr = np.asarray(im)
            arr = arr[..., None] if arr.ndim == 2 else arr
            if arr.ndim != 3 or arr.shape[-1] != c_in or arr.dtype != np.uint8:
                raise GankitError(f"images[{i}]: expected uint8 [H, W, {c_in}] (this translator takes {c_in}-channel images), "
                                  f"got {arr.dtype} {list(arr.shape)}")
            a = torch.tensor(arr.transpose(2, 0, 1))[None].float() / 127.5 - 1.0
            out.append(self._finish(translate_tensor(net, a, tile, overlap))[0])
        if single:
            return out[0]
        return np.stack(out) if isinstance(images, np.ndarray) else out


    # -- the latent space: projection, directions, edits (`gankit.latent`) --

    def space(self, what: str = "this generator"):
        """Its latent space (`latent.space.LatentSpace`); refused with one line for translation and 2D generators."""
        from ..latent.space import LatentSpace

        if self.kind != "image":
            raise GankitError(f"{what}: {'a translation generator has no latent space' if self.kind == 'pairs' else 'a 2D generator makes points, not images'} "
                              f"({self.path})")
        return LatentSpace.of(self.net, str(self.path))

    def latent_of(self, seed: int = 0, n: int = 1, label: int | str | None = None) -> torch.Tensor:
        """The latents, in the generator's space (`latent_space`: z, or StyleGAN2's w), of `sample(n, seed, label=...)`'s
        images: [n, dim]."""
        space = self.space("latent_of")
        z = self.latents(n, seed)
        if space.name == "z":
            return z
        y = self.labels_for(n, label)
        with torch.no_grad():
            return space.G.mapping(z.to(self.device), None if y is None else y.to(self.device)).cpu()

    @property
    def latent_space(self) -> str:
        """"z" (the input) or "w" (StyleGAN2's mapping network's output): where projections, directions and edits live."""
        return self.space("latent_space").name

    def project(self, images, label: int | str | None = None, steps: int = 300, perceptual: str = "inception",
                w_plus: bool = False, noise: bool = True, seed: int = 0, lr: float = 0.1, progress: bool = True, on_step=None):
        """Find the latents whose images match `images` (uint8 [H, W, C] / [N, H, W, C], PIL images, of any size:
        resized and centre-cropped as the training data were). Returns a `latent.projection.Projection`: `.latent`,
        `.labels`, `.images` (the reconstructions), `.pixel` and `.perceptual` distances, `.history`. `label`: the class
        for a conditional generator (found when None); `w_plus`: StyleGAN2, one w per layer; `perceptual`: inception
        (intermediate features of the FID network) or none; `noise`: also fit the noise maps (StyleGAN2, FastGAN); `lr`: the
        peak learning rate; `on_step(step, distances)`: called every few steps."""
        from ..latent.files import as_images
        from ..latent.projection import Options, project

        space = self.space("project")
        x = as_images(images, tuple(self.meta["output"]["shape"]))
        y = None if label is None else self.labels_for(len(x), label)
        start = self.encoder_start(x) if self.meta.get("family") == "vae" else None
        return project(space, x, y, Options(steps=steps, lr=lr, perceptual=perceptual, w_plus=w_plus, noise=noise, seed=seed),
                       start=start, progress=progress, on_step=on_step)

    def encoder_start(self, x: torch.Tensor) -> torch.Tensor | None:
        """A VAE's latents for `x`: its encoder's mean, when the encoder is there (a run or checkpoint, not an export)."""
        if is_export(self.path):
            return None
        from ..models import build_models
        from ..models.vae import encode
        from .loader import load_generator

        lg = load_generator(self.path)
        _, E = build_models(lg.spec, lg.cfg.model.arch, vae=True)
        E.load_state_dict(lg.state["D"])
        with torch.no_grad():
            return encode(E.eval(), x)[0]

    def directions(self, method: str = "sefa", k: int = 8):
        """Semantic directions in the latent space (`latent.directions.Directions`: unit `vectors` [k, dim], `std`,
        `values`): sefa (every architecture) or ganspace (StyleGAN2's w). An export's stored ones when it has them."""
        from ..latent.directions import Directions, find_directions

        space = self.space("directions")
        if (method, k) in self._found:  # an edit asks once per frame; GANSpace draws 10,000 w each time
            return self._found[method, k]
        stored = (self.meta.get("directions") or {}).get(method)
        d = Directions.from_json(stored, space.dim, f"{self.path} directions") if stored is not None else None
        if d is not None and k <= len(d):
            d = Directions(d.method, d.space, d.vectors[:k], d.std[:k], d.values[:k])
        else:
            d = find_directions(space, method, k)
        self._found[method, k] = d
        return d

    def edit(self, latent, direction: int, amount: float, method: str = "sefa", label: int | str | None = None) -> np.ndarray:
        """The images of `latent` moved `amount` standard deviations along direction `direction` (of `directions(method)`):
        uint8 [N, H, W, C]. `latent`: a projection (`project(...)`, with its classes and noise maps), a seed (the latent of
        `sample(1, seed)`), or latents [N, dim] (w+: [N, layers, dim]) in `latent_space`; `label`: their class
        (conditional z). Amount 0 gives the latent's own image."""
        from ..latent.directions import edit
        from ..latent.projection import Projection

        space = self.space("edit")
        dirs = self.directions(method, max(8, direction + 1))
        noise = None
        if isinstance(latent, Projection):
            lat, y, noise = latent.latent, latent.labels, latent.noise
        elif isinstance(latent, int):
            lat, y = self.latent_of(latent, 1, label), self.labels_for(1, label)
        else:
            lat = torch.as_tensor(np.asarray(latent) if not isinstance(latent, torch.Tensor) else latent).float()
            y = self.labels_for(len(lat), label) if space.name == "z" else None
        lat = edit(space, space.check(lat).to(self.device), dirs, direction, amount)
        with torch.no_grad(), space.with_noise(None if noise is None else [m.to(self.device) for m in noise]):
            return self._finish(space.render(lat, None if y is None else y.to(self.device)).float().cpu())


def load(path: str | Path, device: str = "cpu") -> Generator:
    """A generator from an export folder, a run folder (its newest valid checkpoint's G_ema) or a
    checkpoint file."""
    from .loader import load_generator

    lg = load_generator(path, device)
    return Generator(lg.G, lg.export_meta if lg.export_meta is not None else describe(lg), lg.path)


def describe(lg: Any) -> dict[str, Any]:
    """generator.json's contents (less the files' hashes) for a generator loaded from a checkpoint
    (`run.LoadedGenerator`)."""
    from dataclasses import asdict

    from ..version import __version__

    spec = {**asdict(lg.spec), "sn_g": False}  # exported weights have spectral norm folded in
    data = dict(lg.data)
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "gankit": __version__,
        "family": lg.cfg.model.family, "arch": lg.cfg.model.arch, "spec": spec,
        "z_dim": lg.spec.z_dim, "latent": {"prior": "normal", "mean": 0.0, "std": 1.0,
                                           "truncation": W_TRUNCATION if getattr(lg.G, "truncates_w", False) else "z * psi"},
        "num_classes": lg.spec.num_classes, "class_names": list(data.get("class_names") or [])[: lg.spec.num_classes]
        or [str(i) for i in range(lg.spec.num_classes)],
        "kind": data["kind"],
        "output": {"shape": list(data["shape"]), "layout": "NCHW" if data["kind"] == "image" else "N,2",
                   "range": [-1.0, 1.0] if data["kind"] == "image" else None},
        "data": {k: data.get(k) for k in ("name", "kind", "shape", "size", "num_classes", "fingerprint")},
        **({"translation": {"input_channels": lg.spec.in_channels, "output_channels": lg.spec.shape[0], "multiple": lg.G.multiple,
                            "context": lg.G.context, "directions": ["AtoB", "BtoA"] if hasattr(lg.G, "ba") else ["AtoB"]}}
           if lg.spec.in_channels else {}),
        "step": lg.step, "training": {"images": lg.images, "wall_seconds": round(lg.wall, 1), "params_d": lg.params_d},
        "source": str(lg.path), "config": lg.cfg.to_dict(),
    }
