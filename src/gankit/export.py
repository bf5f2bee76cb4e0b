"""Getting things out of a trained run: samples as PNG grids, arrays, folders, GIFs."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .errors import GankitError
from .run import load_generator
from .sampling import generate, interpolation_path
from .viz import grid_image, save_gif, save_grid, to_uint8


def sample_command(a: argparse.Namespace) -> None:
    if a.n < 1:
        raise GankitError(f"--n: must be >= 1, got {a.n}")
    if not 0 < a.truncation <= 2:
        raise GankitError(f"--truncation: must be in (0, 2], got {a.truncation}")
    lg = load_generator(a.run, a.device)
    ncls, z_dim = lg.spec.num_classes, lg.spec.z_dim
    if a.label is not None and not (ncls and 0 <= a.label < ncls):
        raise GankitError(f"--label: the model has {ncls} classes" if ncls else "--label: the model is unconditional")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    device = next(lg.G.parameters()).device

    if getattr(a, "reconstruct", False):
        save_reconstructions(lg, a.n, a.seed, out)
    elif a.interpolate:
        if out.suffix.lower() != ".gif":
            raise GankitError(f"--out: an interpolation is written as a .gif, got {out}")
        if lg.data["kind"] != "image":
            raise GankitError("--interpolate: only image models can be animated")
        gen = torch.Generator().manual_seed(a.seed)
        rows = min(a.n, 16)
        frames = []
        with torch.no_grad():
            y = (torch.arange(rows) % ncls).to(device) if ncls else None
            for z in interpolation_path(max(a.interpolate, 2), 12, z_dim, gen, rows):
                frames.append(grid_image(lg.G((z * a.truncation).to(device), y).float().cpu(), nrow=int(np.ceil(np.sqrt(rows)))))
        save_gif(frames, out)
    else:
        x, y = generate(lg.G, a.n, z_dim, ncls, device, seed=a.seed, truncation=a.truncation, label=a.label)
        if lg.data["kind"] == "points":
            if out.suffix.lower() == ".npz":
                np.savez_compressed(out, points=x.numpy().astype(np.float32))
            else:
                from .viz import save_scatter

                save_scatter(np.zeros((0, 2), np.float32), x.numpy(), out if out.suffix else out.with_suffix(".png"))
        elif out.suffix.lower() == ".png":
            save_grid(x, out, nrow=10 if ncls == 10 and a.label is None else None)
        elif out.suffix.lower() == ".npz":
            arrays = {"images": to_uint8(x)}
            if y is not None:
                arrays["labels"] = y.numpy()
            np.savez_compressed(out, **arrays)
        else:
            from PIL import Image

            out.mkdir(parents=True, exist_ok=True)
            for i, im in enumerate(to_uint8(x)):
                Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(out / f"{i:06d}.png")
    print(f"wrote {out}")


def save_reconstructions(lg, n: int, seed: int, out: Path) -> None:
    """A VAE's reconstructions: rows of real images, each followed by its reconstruction."""
    from .data import load_dataset
    from .models import build_models
    from .vae import reconstruct

    if lg.cfg.model.family != "vae":
        raise GankitError("--reconstruct: only a VAE run (model.family=vae) has an encoder")
    if out.suffix.lower() != ".png":
        raise GankitError(f"--out: reconstructions are written as a .png grid, got {out}")
    _, E = build_models(lg.spec, lg.cfg.model.arch, vae=True)
    E.load_state_dict(lg.state["D"])
    E = E.to(next(lg.G.parameters()).device).eval()
    ds = load_dataset(lg.cfg.data)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[: min(n, len(ds))]
    x = ds.to_float(idx).to(next(E.parameters()).device)
    r = reconstruct(E, lg.G, x).cpu()
    row = min(8, len(idx))
    blocks = [t for i in range(0, len(idx), row) for t in (x[i:i + row].cpu(), r[i:i + row])]
    save_grid(torch.cat(blocks), out, nrow=row)
