"""`gankit project` (real images into the latent space), `gankit directions` (SeFa, GANSpace) and
`gankit edit` (a sample or a projection moved along a direction)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import GankitError
from ..paths import check_output_file
from ..runfolder import RunFolder


def add(sub) -> None:
    pj = sub.add_parser("project", help="find the latents whose images match real images (projection)")
    pj.add_argument("run", help="a run folder, a checkpoint file or an export folder")
    pj.add_argument("images", nargs="+", help="image files or folders of them (resized and cropped as the training data were)")
    pj.add_argument("--out", required=True, help="folder for NAME.png (target | reconstruction), NAME.npz (the latent) and projection.json")
    pj.add_argument("--steps", type=int, default=300, help="Adam steps (default 300)")
    pj.add_argument("--lr", type=float, default=0.1, help="peak learning rate (warm-up, then a cosine ramp-down)")
    pj.add_argument("--perceptual", choices=["inception", "none"], default="inception",
                    help="the perceptual term beside pixels: intermediate features of the FID Inception network (LPIPS needs downloaded weights)")
    pj.add_argument("--label", default=None, help="the class of every image (conditional models; default: found)")
    pj.add_argument("--w-plus", action="store_true", help="stylegan2: one w per style layer (closer fits, less editable)")
    pj.add_argument("--no-noise", action="store_true", help="keep the noise inputs' fixed draw (stylegan2, fastgan)")
    pj.add_argument("--seed", type=int, default=0)
    pj.add_argument("--device", default="cpu")
    pj.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    pj.set_defaults(fn=project)

    dr = sub.add_parser("directions", help="semantic directions in the latent space (SeFa, GANSpace) and strips of what they change")
    dr.add_argument("run", help="a run folder, a checkpoint file or an export folder")
    dr.add_argument("--method", choices=["sefa", "ganspace"], default=None, help="default: sefa, and ganspace where the latent is w (stylegan2)")
    dr.add_argument("--k", type=int, default=8, help="directions per method (default 8)")
    dr.add_argument("--out", default=None, help="folder for directions.json and strips_METHOD.png (default RUN/directions, shown in the report)")
    dr.add_argument("--seed", type=int, default=0, help="the strips' samples")
    dr.add_argument("--device", default="cpu")
    dr.set_defaults(fn=directions)

    ed = sub.add_parser("edit", help="move a sample or a projected image along a semantic direction")
    ed.add_argument("run", help="a run folder, a checkpoint file or an export folder")
    ed.add_argument("--seed", type=int, default=None, help="edit the sample of this seed (as `gankit sample --seed S --n 1`)")
    ed.add_argument("--latent", default=None, help="edit a projection: a NAME.npz written by gankit project")
    ed.add_argument("--direction", type=int, required=True, help="which direction (0: the strongest)")
    ed.add_argument("--amount", type=float, required=True, help="how far, in standard deviations of the prior along it")
    ed.add_argument("--method", choices=["sefa", "ganspace"], default="sefa")
    ed.add_argument("--label", default=None, help="the class (conditional models, with --seed)")
    ed.add_argument("--out", required=True, help="x.png: the edited image; x.gif: a loop from 0 to +amount to -amount and back")
    ed.add_argument("--frames", type=int, default=24, help="frames of a GIF (default 24)")
    ed.add_argument("--device", default="cpu")
    ed.set_defaults(fn=edit)


def project(a: argparse.Namespace) -> int:
    from ..artefact.generator import load
    from ..latent.files import read_image_files, write_projections
    from ..paths import check_writable

    g = load(a.run, a.device)
    g.space("gankit project")
    names, images = read_image_files(a.images)
    check_writable(Path(a.out), flag="--out")
    p = g.project(images, label=a.label, steps=a.steps, perceptual=a.perceptual, w_plus=a.w_plus, noise=not a.no_noise, seed=a.seed, lr=a.lr)
    written = write_projections(p, names, Path(a.out))
    per = "" if p.perceptual is None else f", perceptual {float(p.perceptual.mean()):.4f}"
    print(f"projected {len(written)} image(s) into {p.space} ({p.start}, {a.steps} steps): pixel MSE {float(p.pixel.mean()):.4f}{per}; "
          f"wrote {a.out}/NAME.png (target | reconstruction), NAME.npz (the latent), projection.json")
    return 0


def directions(a: argparse.Namespace) -> int:
    from ..artefact.exported import is_export
    from ..artefact.generator import load
    from ..latent.files import strips_file, write_run_directions

    g = load(a.run, a.device)
    g.space("gankit directions")
    if a.out is None and (is_export(a.run) or not Path(a.run).is_dir()):
        raise GankitError("--out: give a folder (the default, RUN/directions, is for a run folder)")
    out = Path(a.out) if a.out else RunFolder(a.run).directions
    found = write_run_directions(g.net, out, [a.method] if a.method else None, a.k, a.seed)
    for m, d in found.items():
        print(f"{m} in {d.space}: {len(d)} directions; {'singular values' if m == 'sefa' else 'variances'} "
              + ", ".join(f"{v:.3g}" for v in d.values.tolist()))
    print(f"wrote {out}/directions.json and {', '.join(strips_file(m) for m in found)} (each direction: rows of samples from -3 to +3 std)")
    return 0


def edit(a: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from ..artefact.generator import load
    from ..latent.files import load_projection
    from ..viz import save_gif

    g = load(a.run, a.device)
    if (a.seed is None) == (a.latent is None):
        raise GankitError("give either --seed S (a sample's latent) or --latent FILE.npz (a projection from gankit project)")
    latent = a.seed if a.latent is None else load_projection(a.latent)
    out = Path(a.out)
    if out.suffix.lower() not in (".png", ".gif"):
        raise GankitError(f"--out: x.png (the edited image) or x.gif (a loop along the direction), got {out}")
    check_output_file(out)
    if a.frames < 4:
        raise GankitError(f"--frames: at least 4, got {a.frames}")

    def image(amount: float) -> Image.Image:
        arr = g.edit(latent, a.direction, amount, method=a.method, label=a.label)
        row = np.concatenate(list(arr), axis=1)  # several projected images side by side
        return Image.fromarray(row[..., 0] if row.shape[-1] == 1 else row)

    if out.suffix.lower() == ".gif":  # 0 -> +amount -> -amount -> 0, at a constant pace
        quarter = a.frames // 4
        ramp = [i / quarter for i in range(quarter)]
        amounts = [a.amount * v for v in ramp + [1 - v for v in ramp] + [-v for v in ramp] + [v - 1 for v in ramp]]
        frames = [image(v) for v in amounts]
        scale = max(1, 256 // max(frames[0].size))
        save_gif([f.resize((f.width * scale, f.height * scale), Image.Resampling.NEAREST) for f in frames], out)
    else:
        image(a.amount).save(out)
    print(f"wrote {out}: direction {a.direction} ({a.method}), amount {a.amount}")
    return 0
