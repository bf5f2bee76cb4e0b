"""`gankit sample` (grids, arrays, folders of PNGs, interpolation GIFs, a VAE's reconstructions) and
`gankit translate` (a translation run's outputs for image files, each at its own size)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..errors import GankitError
from ..paths import check_output_file, check_writable

GRID_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_ANIMATED = 64  # cells in an interpolation GIF


def add(sub) -> None:
    s = sub.add_parser("sample", help="draw samples from a trained generator (G_ema)")
    s.add_argument("run", help="a run folder, a checkpoint file or an export folder")
    s.add_argument("--n", type=int, default=None, help="number of samples (default 64; 16 with --interpolate, at most 64)")
    s.add_argument("--out", required=True, help="x.png, x.jpg, x.webp: a grid; x.npz: an array; x.gif with --interpolate; "
                                               "a name without a suffix: a folder of PNGs")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--truncation", type=float, default=1.0, help="latent scale psi (< 1: less variety, higher quality)")
    s.add_argument("--label", default=None, help="class to generate, by index or name (conditional models)")
    s.add_argument("--reconstruct", action="store_true", help="VAE runs: real images (odd rows) and their reconstructions (even rows), as a .png")
    s.add_argument("--interpolate", type=int, default=0, metavar="K", help="animate a loop through K (>= 2) latent key points")
    s.add_argument("--device", default="cpu")
    s.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    s.set_defaults(fn=sample)

    tr = sub.add_parser("translate", help="translate images with a translation run (pix2pix, cyclegan), each at its own size")
    tr.add_argument("run", help="a translation run folder or a checkpoint file")
    tr.add_argument("inputs", nargs="+", help="image files or folders of them (converted to the run's input channels)")
    tr.add_argument("--out", required=True, help="folder for the outputs (PNG, the inputs' names)")
    tr.add_argument("--tile", type=int, default=512, help="translate larger images in windows of this side (memory stays that of one window)")
    tr.add_argument("--overlap", type=int, default=None, help="context shared by neighbouring windows (default: the network's, exact tiling)")
    tr.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="a cyclegan run: which of its generators (default A to B)")
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    tr.set_defaults(fn=translate)


def _out_kind(out: Path, interpolate: int, reconstruct: bool) -> str:
    """What `--out` asks for: grid, array, gif or folder; a suffix that fits none is refused."""
    suffix = out.suffix.lower()
    if reconstruct:
        if suffix != ".png":
            raise GankitError(f"--out: reconstructions are written as a .png grid, got {out}")
        return "grid"
    if interpolate:
        if suffix != ".gif":
            raise GankitError(f"--out: an interpolation is written as a .gif, got {out}")
        return "gif"
    if suffix == ".gif":
        raise GankitError(f"--out: {out} is an animation; add --interpolate K (K key points), or write a .png grid")
    if suffix in GRID_SUFFIXES:
        return "grid"
    if suffix == ".npz":
        return "array"
    if suffix and not out.is_dir():
        raise GankitError(f"--out: unknown format {suffix}; use .png, .jpg or .webp (a grid), .npz (an array), "
                          ".gif (with --interpolate) or a name without a suffix (a folder of PNGs)")
    return "folder"


def sample(a: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..artefact.loader import check_generates, load_generator
    from ..artefact.sampling import generate, interpolation_path, resolve_label, truncation_of
    from ..viz import grid_image, save_gif, save_grid, to_uint8

    n = a.n if a.n is not None else (16 if a.interpolate else 64)
    if n < 1:
        raise GankitError(f"--n: must be >= 1, got {n}")
    if not 0 < a.truncation <= 2:
        raise GankitError(f"--truncation: must be in (0, 2], got {a.truncation}")
    if a.interpolate and a.interpolate < 2:
        raise GankitError(f"--interpolate: needs at least 2 key points to move between, got {a.interpolate}")
    if a.interpolate and n > MAX_ANIMATED:
        raise GankitError(f"--n: an interpolation animates at most {MAX_ANIMATED} samples at once, got {n}")
    out = Path(a.out)
    kind = _out_kind(out, a.interpolate, getattr(a, "reconstruct", False))
    if kind == "folder":
        check_writable(out.parent, flag="--out")
    else:
        check_output_file(out)
    lg = load_generator(a.run, a.device, flag="--device")
    check_generates(lg, "gankit sample")
    ncls, z_dim = lg.spec.num_classes, lg.spec.z_dim
    label = resolve_label(a.label, ncls, list(lg.data.get("class_names") or []), what="--label")
    device = next(lg.G.parameters()).device

    if kind == "gif" and lg.data["kind"] != "image":
        raise GankitError("--interpolate: only image models can be animated")
    if getattr(a, "reconstruct", False):
        save_reconstructions(lg, n, a.seed, out)
    elif kind == "gif":
        gen = torch.Generator().manual_seed(a.seed)
        frames = []
        with torch.no_grad():
            y = None
            if ncls:
                y = (torch.full((n,), label) if label is not None else torch.arange(n) % ncls).to(device)
            for z in interpolation_path(a.interpolate, 12, z_dim, gen, n):
                scale, kw = truncation_of(lg.G, a.truncation)
                frames.append(grid_image(lg.G((z * scale).to(device), y, **kw).float().cpu(), nrow=math.ceil(math.sqrt(n))))
        save_gif(frames, out)
    else:
        x, y = generate(lg.G, n, z_dim, ncls, device, seed=a.seed, truncation=a.truncation, label=label)
        if lg.data["kind"] == "points":
            if kind == "array":
                np.savez_compressed(out, points=x.numpy().astype(np.float32))
            else:
                from ..viz import save_scatter

                out = out if out.suffix else out.with_suffix(".png")
                save_scatter(np.zeros((0, 2), np.float32), x.numpy(), out)
        elif kind == "grid":
            save_grid(x, out, nrow=10 if ncls == 10 and a.label is None else None)
        elif kind == "array":
            arrays = {"images": to_uint8(x)}
            if y is not None:
                arrays["labels"] = y.numpy()
            np.savez_compressed(out, **arrays)
        else:
            from PIL import Image

            out.mkdir(parents=True, exist_ok=True)
            for i, im in enumerate(to_uint8(x)):
                Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(out / f"{i:06d}.png")
    print(f"wrote {out} (from {lg.path}, step {lg.step})")
    return 0


def save_reconstructions(lg, n: int, seed: int, out: Path) -> None:
    """A VAE's reconstructions: rows of real images, each followed by its reconstruction."""
    import torch

    from ..data import load_dataset
    from ..models import build_models
    from ..models.vae import reconstruction_rows
    from ..viz import save_grid

    if lg.cfg.model.family != "vae":
        raise GankitError("--reconstruct: only a VAE run (model.family=vae) has an encoder")
    if lg.state is None:
        raise GankitError(f"--reconstruct: {lg.path} is an export, which holds the decoder alone; give the run folder")
    _, E = build_models(lg.spec, lg.cfg.model.arch, vae=True)
    E.load_state_dict(lg.state["D"])
    E = E.to(next(lg.G.parameters()).device)
    ds = load_dataset(lg.cfg.data)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[: min(n, len(ds))]
    x = ds.to_float(idx).to(next(E.parameters()).device)
    row = min(8, len(idx))
    save_grid(reconstruction_rows(E, lg.G, x, row), out, nrow=row)


def translate(a: argparse.Namespace) -> int:
    from ..artefact.translation import translate_files

    translate_files(a.run, a.inputs, Path(a.out), a.tile, a.overlap, a.device, a.direction)
    return 0
