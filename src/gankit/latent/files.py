"""Projections, directions and edits on disk: what `gankit project`, `gankit directions` and
`gankit edit` read and write (the commands' argument parsing is in `commands/latent.py`)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import GankitError
from ..models.layers import evaluating
from .directions import Directions
from .projection import Projection, summary

DIRECTIONS_FILE = "directions.json"
STRIPS_FILE = "strips.png"
STRIP_SEEDS = 3
STRIP_STEPS = 7


def read_image_files(paths: list[str]) -> tuple[list[str], list]:
    """Image files (or folders of them), decoded: (names relative to what was given, without suffix; PIL images).
    `as_images` then reads them as the training data were."""
    from ..data.images import decode_file, find_images

    found = find_images(paths)
    return [str(rel.with_suffix("")) for _, rel in found], [decode_file(path) for path, _ in found]


def as_images(images: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """uint8 arrays [H, W, C] / [N, H, W, C] or PIL images, of any size, as float [-1, 1] [N, C, H, W] at the generator's size:
    read as the training data were (aspect kept, scaled and centre-cropped, converted to its channels)."""
    from PIL import Image

    from ..data.images import normalise_mode, resize_crop, to_array

    c, h, _ = shape
    single = isinstance(images, Image.Image) or (isinstance(images, np.ndarray) and images.ndim in (2, 3))
    out = []
    for i, im in enumerate([images] if single else list(images)):
        if not isinstance(im, Image.Image):
            arr = np.asarray(im)
            if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4)):
                raise GankitError(f"images[{i}]: expected uint8 [H, W] or [H, W, C] (C 1, 3 or 4) or a PIL image, got {arr.dtype} {list(arr.shape)}")
            im = Image.fromarray(arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr)
        out.append(to_array(resize_crop(normalise_mode(im), h), c))
    if not out:
        raise GankitError("images: none given")
    return torch.tensor(np.stack(out)).float() / 127.5 - 1.0


def save_projection(p: Projection, path: Path, index: int | None = None) -> None:
    """One image's projection (`index`) or all as an .npz (numpy arrays only, no pickle): latent,
    space, label, noise maps, reconstruction, target, distances."""
    sl = slice(None) if index is None else slice(index, index + 1)
    arrays: dict[str, np.ndarray] = {"latent": p.latent[sl].numpy(), "space": np.array(p.space),
                                     "images": p.images[sl].numpy(), "targets": p.targets[sl].numpy(),
                                     "pixel": p.pixel[sl].numpy()}
    if p.labels is not None:
        arrays["labels"] = p.labels[sl].numpy()
    if p.perceptual is not None:
        arrays["perceptual"] = p.perceptual[sl].numpy()
    for i, m in enumerate(p.noise or []):
        arrays[f"noise_{i}"] = m[sl].numpy()
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_projection(path: str | Path) -> Projection:
    """A projection saved by `save_projection` (`gankit project`'s .npz files)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            a = {k: f[k] for k in f.files}
        noise = [torch.tensor(a[f"noise_{i}"]) for i in range(sum(k.startswith("noise_") for k in a))]
        return Projection(str(a["space"]), torch.tensor(a["latent"]), torch.tensor(a["labels"]) if "labels" in a else None,
                          noise or None, torch.tensor(a["images"]), torch.tensor(a["targets"]), torch.tensor(a["pixel"]),
                          torch.tensor(a["perceptual"]) if "perceptual" in a else None, "loaded", 0)
    except FileNotFoundError:
        raise GankitError(f"{path}: no such projection file") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise GankitError(f"{path}: not a projection written by gankit project ({str(e)[:120]})") from None


def write_projections(p: Projection, names: list[str], out: Path) -> list[Path]:
    """Per image NAME.png (the target beside its reconstruction) and NAME.npz; projection.json."""
    from ..viz import grid_image

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, name in enumerate(names):
        dest = out / f"{name}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        grid_image(torch.stack([p.targets[i], p.images[i]]), nrow=2).save(dest)
        save_projection(p, out / f"{name}.npz", i)
        written.append(dest)
    info = summary(p)
    info["images"] = names
    (out / "projection.json").write_text(json.dumps(info, indent=1))
    return written


def strips_file(method: str) -> str:
    return f"strips_{method}.png"


def save_strips(space, dirs: Directions, path: Path, seed: int = 0, seeds: int = STRIP_SEEDS, steps: int = STRIP_STEPS) -> Path:
    """A picture of `dirs`: for each direction, `seeds` samples (one row each) moved from -3 to +3 of the
    prior's standard deviations along it, in `steps` steps."""
    from ..viz import grid_image
    from .directions import strips

    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(seeds) % space.num_classes if space.num_classes else None
    latents = space.draw(seeds, gen, y)
    x = strips(space, dirs, latents, None if space.name == "w" or y is None else y.to(space.device), steps)
    grid_image(x, nrow=steps).save(path)
    return path


def write_run_directions(G, out: Path, methods: list[str] | None = None, k: int = 8, seed: int = 0) -> dict[str, Directions]:
    """directions.json and strips_METHOD.png in `out` for generator `G` (run in eval mode meanwhile):
    `methods` (default sefa, and ganspace where the latent is w), `k` directions each."""
    from .directions import METHODS, find_directions
    from .space import LatentSpace

    with evaluating(G):
        space = LatentSpace.of(G)
        methods = methods or [m for m in METHODS if m == "sefa" or space.name == "w"]
        found = {m: find_directions(space, m, k) for m in methods}
        write_directions(found, out)
        for m, d in found.items():
            save_strips(space, d, out / strips_file(m), seed=seed)
        return found


def read_directions(path: Path, dim: int) -> dict[str, Directions]:
    """directions.json (method -> Directions), checked against the latent's width."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GankitError(f"{path}: not a readable directions file ({str(e)[:120]})") from None
    if not isinstance(raw, dict):
        raise GankitError(f"{path}: not a directions file (expected an object of methods)")
    return {m: Directions.from_json(d, dim, f"{path} ({m})") for m, d in raw.items()}


def write_directions(found: dict[str, Directions], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / DIRECTIONS_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({m: d.to_json() for m, d in found.items()}))
    tmp.replace(path)
    return path
