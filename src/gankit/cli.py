"""The `gankit` command: user mistakes become one clear line and exit status 2."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from .errors import GankitError
from .paths import check_output_file


def _train(a: argparse.Namespace) -> int:
    from .config import dump_yaml
    from .loop import train
    from .resume import resolve

    overrides = list(a.overrides)
    config = a.config
    if config and "=" in config:  # `gankit train key=value` with no config file
        overrides.insert(0, config)
        config = None
    cfg, out, resume = resolve(config, overrides, a.out, a.resume)
    if a.dry_run:
        from .preflight import check_config

        check_config(cfg)
        sys.stdout.write(dump_yaml(cfg))
        sys.stderr.write("dry run: all checks passed (config, data, model, output folder); nothing was trained\n")
        return 0
    train(cfg, out, resume=resume)
    return 0


def _sample(a: argparse.Namespace) -> int:
    from .samples import sample_command

    sample_command(a)
    return 0


def _export(a: argparse.Namespace) -> int:
    from .export import export_command

    export_command(a)
    return 0


def _serve(a: argparse.Namespace) -> int:
    from .serve import serve_command

    if not 0 <= a.port <= 65535:
        raise GankitError(f"--port: must be 0..65535, got {a.port}")
    serve_command(a)
    return 0


def _translate(a: argparse.Namespace) -> int:
    from .translation import translate_files

    translate_files(a.run, a.inputs, Path(a.out), a.tile, a.overlap, a.device, a.direction)
    return 0


def _project(a: argparse.Namespace) -> int:
    from .generator import load
    from .latent.files import read_image_files, write_projections
    from .paths import check_writable

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


def _directions(a: argparse.Namespace) -> int:
    from .exported import is_export
    from .generator import load
    from .latent.files import strips_file, write_run_directions

    g = load(a.run, a.device)
    g.space("gankit directions")
    if a.out is None and (is_export(a.run) or not Path(a.run).is_dir()):
        raise GankitError("--out: give a folder (the default, RUN/directions, is for a run folder)")
    out = Path(a.out) if a.out else Path(a.run) / "directions"
    found = write_run_directions(g.net, out, [a.method] if a.method else None, a.k, a.seed)
    for m, d in found.items():
        print(f"{m} in {d.space}: {len(d)} directions; {'singular values' if m == 'sefa' else 'variances'} "
              + ", ".join(f"{v:.3g}" for v in d.values.tolist()))
    print(f"wrote {out}/directions.json and {', '.join(strips_file(m) for m in found)} (each direction: rows of samples from -3 to +3 std)")
    return 0


def _edit(a: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from .generator import load
    from .latent.files import load_projection
    from .viz import save_gif

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


def _datasets(a: argparse.Namespace) -> int:
    from .data import describe_sources

    rows = describe_sources()
    w = max(len(r[0]) for r in rows)
    print(f"{'name':<{w}}  {'size':>7}  {'shape':<8}  description")
    for name, size, shape, desc in rows:
        print(f"{name:<{w}}  {size:>7}  {shape:<8}  {desc}")
    return 0


def _archs(a: argparse.Namespace) -> int:
    from .models import describe_archs

    rows = [("name", "data", "resolutions", "conditional", "options of its own"), *describe_archs()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(f"{v:<{w}}" for v, w in zip(r, widths)) + "  " + r[4])
    return 0


def _eval(a: argparse.Namespace) -> int:
    from .metrics.evaluate import eval_command

    eval_command(a)
    return 0


def _compare(a: argparse.Namespace) -> int:
    from .comparison import compare_command

    compare_command(a)
    return 0


def _doctor(a: argparse.Namespace) -> int:
    from .health import doctor

    text, _ = doctor(Path(a.run))
    print(text)
    return 0


def _report(a: argparse.Namespace) -> int:
    from .report import write_report

    run = Path(a.run)
    if not (run / "config.yaml").is_file() and not (run / "metrics.jsonl").is_file():
        raise GankitError(f"{run}: not a run folder (no config.yaml or metrics.jsonl)")
    check_output_file(run / "report.html", flag="the run folder")
    print(f"wrote {write_report(run)}")
    return 0


def _bench(a: argparse.Namespace) -> int:
    from .bench import SHAPES, run_bench

    bad = [x for x in a.shapes if x not in SHAPES]
    if bad:
        raise GankitError(f"--shapes: unknown {bad}; choose from {', '.join(SHAPES)}")
    for name, v in (("--batch", a.batch), ("--repeats", a.repeats)):
        if v < 1:
            raise GankitError(f"{name}: must be at least 1, got {v}")
    out = Path(a.out) if a.out else None
    if out is not None:  # checked before ten minutes of measuring, not after
        if out.is_dir():
            out = out / "bench.md"
        check_output_file(out)
    text = run_bench(a.device, tuple(a.shapes), a.batch, a.repeats)  # prints as it goes
    if out is not None:
        out.write_text(text + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    ap = argparse.ArgumentParser(prog="gankit", description="Train, sample, evaluate and compare GANs.")
    ap.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train a model from a YAML preset plus key=value overrides")
    t.add_argument("config", nargs="?", help="a YAML preset (see configs/)")
    t.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. train.steps=500")
    t.add_argument("--out", help="run folder (default runs/<preset name>)")
    t.add_argument("--dry-run", action="store_true", help="run every check that needs no training, print the resolved config and exit")
    t.add_argument("--resume", help="auto (newest valid checkpoint in the run folder) or a checkpoint path")
    t.set_defaults(fn=_train)

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
    s.set_defaults(fn=_sample)

    tr = sub.add_parser("translate", help="translate images with a translation run (pix2pix, cyclegan), each at its own size")
    tr.add_argument("run", help="a translation run folder or a checkpoint file")
    tr.add_argument("inputs", nargs="+", help="image files or folders of them (converted to the run's input channels)")
    tr.add_argument("--out", required=True, help="folder for the outputs (PNG, the inputs' names)")
    tr.add_argument("--tile", type=int, default=512, help="translate larger images in windows of this side (memory stays that of one window)")
    tr.add_argument("--overlap", type=int, default=None, help="context shared by neighbouring windows (default: the network's, exact tiling)")
    tr.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="a cyclegan run: which of its generators (default A to B)")
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    tr.set_defaults(fn=_translate)

    x = sub.add_parser("export", help="write the generator as safetensors, ONNX or the sampler web page")
    x.add_argument("target", help="a run folder or a checkpoint file")
    x.add_argument("--format", choices=["safetensors", "onnx", "web"], default="safetensors",
                   help="safetensors: weights + generator.json; onnx: also generator.onnx; web: also the sampler page")
    x.add_argument("--out", required=True, help="the export folder to write")
    x.add_argument("--device", default="cpu")
    x.set_defaults(fn=_export)

    v = sub.add_parser("serve", help="serve a run's live report (and its sampler page), or an export's sampler page")
    v.add_argument("dir", help="a run folder (live report at /, sampler at /sampler/), or a web export folder")
    v.add_argument("--port", type=int, default=8000, help="0: any free port")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    v.set_defaults(fn=_serve)

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
    pj.set_defaults(fn=_project)

    dr = sub.add_parser("directions", help="semantic directions in the latent space (SeFa, GANSpace) and strips of what they change")
    dr.add_argument("run", help="a run folder, a checkpoint file or an export folder")
    dr.add_argument("--method", choices=["sefa", "ganspace"], default=None, help="default: sefa, and ganspace where the latent is w (stylegan2)")
    dr.add_argument("--k", type=int, default=8, help="directions per method (default 8)")
    dr.add_argument("--out", default=None, help="folder for directions.json and strips_METHOD.png (default RUN/directions, shown in the report)")
    dr.add_argument("--seed", type=int, default=0, help="the strips' samples")
    dr.add_argument("--device", default="cpu")
    dr.set_defaults(fn=_directions)

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
    ed.set_defaults(fn=_edit)

    d = sub.add_parser("datasets", help="list the built-in data sources")
    d.set_defaults(fn=_datasets)
    m = sub.add_parser("archs", help="list the architectures: data kind, resolutions, conditioning, options")
    m.set_defaults(fn=_archs)

    e = sub.add_parser("eval", help="evaluate a run with standard metrics")
    e.add_argument("run", help="a run folder, a checkpoint file or an export folder")
    e.add_argument("--metrics", default=None,
                   help="comma-separated subset of fid,kid,pr,dc,is,classes,modes; a translation run: of l1,psnr,ssim,fid,kid (default all)")
    e.add_argument("--n", type=int, default=5000, help="generated samples (real: the same number or all)")
    e.add_argument("--real", default=None, help="real data source (default: the run's own); a translation run: held-out pairs, read as its training pairs were")
    e.add_argument("--features", default=None, help="inception or classifier (default: inception for images)")
    e.add_argument("--inception", default=None, help="path to the FID Inception TorchScript file")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="cpu")
    e.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    e.set_defaults(fn=_eval)

    h = sub.add_parser("doctor", help="diagnose a finished or running run: findings, evidence, suggestions, verdict")
    h.add_argument("run", help="a run folder")
    h.set_defaults(fn=_doctor)

    r = sub.add_parser("report", help="write RUN/report.html: curves, grids over time, health, evaluation (one offline file)")
    r.add_argument("run", help="a run folder")
    r.set_defaults(fn=_report)

    c = sub.add_parser("compare", help="evaluate several runs (GAN, VAE) identically, side by side")
    c.add_argument("runs", nargs="*", help="run folders, checkpoint files or export folders")
    c.add_argument("--configs", nargs="+", default=None, help="train these presets first, each for --budget-minutes")
    c.add_argument("--budget-minutes", type=float, default=0.0, help="wall-clock training budget per config")
    c.add_argument("--set", nargs="*", default=None, metavar="KEY=VALUE", help="overrides applied to every --configs preset")
    c.add_argument("--out", required=True, help="folder for compare.md, compare.png, compare.json (and runs/ with --configs)")
    c.add_argument("--n", type=int, default=5000, help="generated samples per run")
    c.add_argument("--n-real", type=int, default=None, help="real samples (default: as many as --n, or all there are)")
    c.add_argument("--metrics", default=None, help="comma separated, from fid, kid, pr, dc, classes (default: all)")
    c.add_argument("--real", default=None, help="one real data source for all runs (default: the runs' own, which must agree)")
    c.add_argument("--features", default=None, help="classifier (default for labelled data) or inception")
    c.add_argument("--inception", default=None, help="path to the FID Inception TorchScript file")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--device", default="cpu")
    c.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default; --configs trainings use train.threads)")
    c.set_defaults(fn=_compare)

    b = sub.add_parser("bench", help="training speed: a plain PyTorch DCGAN step against gankit's step and loop")
    b.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    b.add_argument("--shapes", nargs="+", default=["64x64x3", "32x32x3", "32x32x1"], help="RESxRESxCHANNELS")
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--repeats", type=int, default=3, help="measurements per figure (the median is reported)")
    b.add_argument("--out", default=None, help="also write the Markdown table to this file (or to bench.md in this folder)")
    b.set_defaults(fn=_bench)
    return ap


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may also come after options (`--out DIR train.steps=5`)
    if extra and args.cmd == "train" and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    warnings.filterwarnings("ignore", message=".*TypedStorage.*")
    try:
        threads = getattr(args, "threads", 0)
        if threads:
            if not 1 <= threads <= 1024:
                raise GankitError(f"--threads: must be 1..1024, got {threads}")
            import torch

            torch.set_num_threads(threads)
        return args.fn(args)
    except GankitError as e:
        from .loop import Interrupted

        print(f"gankit: error: {e}" if not isinstance(e, Interrupted) else f"gankit: {e}", file=sys.stderr)
        if type(e).__name__ == "PeerLost":  # dist.PeerLost: the run's own cleanup is done and its checkpoints are whole, but
            sys.stdout.flush()  # gloo's destructors may abort the interpreter's exit over a collective left pending with the
            sys.stderr.flush()  # dead peer ("terminate called without an active exception", status -6): leave at once
            os._exit(2)
        return 3 if isinstance(e, Interrupted) else 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
