"""Projection of real images a run did not train on: distances against the number of steps, against the
baseline of the nearest of 10,000 random samples; and seconds per projection at 32 and 64 pixels.

    python benchmarks/projection.py quality --run runs/demo --images digits --out /tmp/proj_demo
    python benchmarks/projection.py quality --run RUN --images cifar10-held-out:PATH.npz --out /tmp/proj_cifar
    python benchmarks/projection.py speed --out /tmp/proj_speed

quality: `--n` images (default 8) are projected `--seeds` times (the random start and the noise differ) for each
of `--steps` (each a whole projection with its own schedule), with the perceptual term (Inception features) and,
with --pixel-only too, without it, and with --fixed-noise, without fitting the noise inputs (as the sampler
page's uploads are projected). Both distances are measured on every result: pixel MSE on [-1, 1] images and the
Inception feature distance (`metrics.perceptual`). The baseline: for each image the nearest (pixel MSE) of 10,000
random samples of the generator (classes in turn for a conditional one). Medians over seeds of the mean over
images. `--images digits`: scikit-learn's 1,797 8x8 digits (another data set than MNIST, so never trained on),
upscaled; `cifar10-held-out:PATH`: an .npz of images (as benchmarks/translation_cifar10.py splits them).

speed: one image, 200 steps, with and without the perceptual term, for networks built from presets at their
sizes with random weights (time does not depend on training): median of 3 runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

BASELINE = 10_000


def images_of(spec: str, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if spec == "digits":
        from PIL import Image
        from sklearn.datasets import load_digits

        d = load_digits()
        idx = rng.choice(len(d.images), n, replace=False)
        return np.stack([np.asarray(Image.fromarray((d.images[i] / 16 * 255).astype(np.uint8)).resize((28, 28), Image.Resampling.BICUBIC))
                         for i in idx])
    if spec.startswith("cifar10-held-out:"):
        x = np.load(spec.split(":", 1)[1])["images"]
        x = x.transpose(0, 2, 3, 1) if x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3) else x  # NCHW -> NHWC
        return x[rng.choice(len(x), n, replace=False)]
    raise SystemExit(f"--images: digits or cifar10-held-out:PATH, got {spec}")


def nearest_of_random(g, space, targets: torch.Tensor, perceptual, count: int = BASELINE) -> dict[str, float]:
    """For each target the nearest (pixel MSE) of `count` random samples; its pixel and perceptual distances."""
    from gankit.metrics.perceptual import pixel_distance

    best = torch.full((len(targets),), float("inf"))
    best_img = torch.zeros_like(targets)
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for start in range(0, count, 500):
            k = min(500, count - start)
            y = (torch.arange(start, start + k) % space.num_classes) if space.num_classes else None
            imgs = space.render(space.draw(k, gen, y), None if space.name == "w" else y).float()
            d = torch.stack([pixel_distance(imgs, t[None].expand_as(imgs)) for t in targets])  # [targets, k]
            v, j = d.min(1)
            better = v < best
            best[better], best_img[better] = v[better], imgs[j[better]]
        per = perceptual(best_img, targets)
    return {"pixel": float(best.mean()), "perceptual": float(per.mean())}


def quality(a: argparse.Namespace) -> dict:
    import gankit
    from gankit.latent.files import as_images
    from gankit.latent.projection import Options, project
    from gankit.metrics.perceptual import InceptionDistance

    torch.set_num_threads(a.threads)
    g = gankit.load(a.run)
    space = g.space("benchmark")
    targets = as_images(list(images_of(a.images, a.n)), tuple(g.meta["output"]["shape"]))
    perceptual = InceptionDistance()
    out: dict = {"run": str(a.run), "arch": g.meta["arch"], "space": space.name, "images": a.images, "n": a.n, "seeds": a.seeds,
                 "baseline": nearest_of_random(g, space, targets, perceptual), "projections": []}
    variants = [("pixel+perceptual", "inception", True)] + ([("pixel only", "none", True)] if a.pixel_only else [])
    variants += [("pixel+perceptual, fixed noise", "inception", False)] if a.fixed_noise else []
    for name, per, noise in variants:
        for steps in a.steps:
            rows = []
            for seed in a.seeds:
                t0 = time.perf_counter()
                p = project(space, targets, None, Options(steps=steps, perceptual=per, noise=noise, seed=seed), perceptual=perceptual if per != "none" else None,
                            progress=False)
                secs = time.perf_counter() - t0
                with torch.no_grad():
                    pd = perceptual(p.images, targets)
                rows.append({"pixel": float(p.pixel.mean()), "perceptual": float(pd.mean()), "seconds": secs})
                print(json.dumps({"variant": name, "steps": steps, "seed": seed, **rows[-1]}), flush=True)
            out["projections"].append({"variant": name, "steps": steps, **{k: statistics.median(r[k] for r in rows) for k in rows[0]}})
            if steps == max(a.steps) and name == variants[0][0]:
                from gankit.viz import grid_image

                grid_image(torch.cat([targets, p.images.clamp(-1, 1)]), nrow=len(targets)).save(Path(a.out) / "projections.png")
    return out


def speed(a: argparse.Namespace) -> dict:
    from gankit.config import make_config
    from gankit.latent.projection import Options, project
    from gankit.latent.space import LatentSpace
    from gankit.metrics.perceptual import InceptionDistance
    from gankit.models import build_models, make_spec

    torch.set_num_threads(a.threads)
    perceptual = InceptionDistance()
    cases = {"32 px: the demo's DCGAN (configs/mnist_conditional.yaml)": ("configs/mnist_conditional.yaml", (1, 32, 32), 10),
             "32 px: StyleGAN2 (benchmarks/cifar10/stylegan2.yaml)": ("benchmarks/cifar10/stylegan2.yaml", (3, 32, 32), 0),
             "64 px: DCGAN (configs/folder64.yaml)": ("configs/folder64.yaml", (3, 64, 64), 0),
             "64 px: StyleGAN2 (benchmarks/cifar10/stylegan2.yaml at 64 px)": ("benchmarks/cifar10/stylegan2.yaml", (3, 64, 64), 0)}
    rows = []
    for name, (preset, shape, classes) in cases.items():
        import yaml

        raw = yaml.safe_load(Path(preset).read_text())
        raw["data"] = {"source": "digits"}
        if shape[-1] == 64 and "widths" in raw.get("model", {}):
            raw["model"]["widths"] = [*raw["model"]["widths"], raw["model"]["widths"][-1]]
        cfg = make_config(raw, [])
        spec = make_spec(cfg.model, shape, classes, "image")
        torch.manual_seed(0)
        G, _ = build_models(spec, cfg.model.arch)
        space = LatentSpace.of(G.eval().requires_grad_(False))
        target = torch.rand(1, *shape) * 2 - 1
        row = {"case": name}
        for label, per in (("pixel+perceptual", perceptual), ("pixel only", None)):
            times = []
            for r in range(3):
                t0 = time.perf_counter()
                project(space, target, torch.zeros(1, dtype=torch.long) if classes else None,
                        Options(steps=200, perceptual="inception" if per else "none", seed=r), perceptual=per, progress=False)
                times.append(time.perf_counter() - t0)
            row[label] = statistics.median(times)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return {"threads": a.threads, "steps": 200, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["quality", "speed"])
    ap.add_argument("--run", help="quality: a run folder, checkpoint or export")
    ap.add_argument("--images", default="digits")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--steps", type=int, nargs="+", default=[25, 100, 400])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pixel-only", action="store_true", help="quality: also project without the perceptual term")
    ap.add_argument("--fixed-noise", action="store_true", help="quality: also keep the noise inputs' fixed draw (as the sampler page's uploads)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    result = quality(a) if a.what == "quality" else speed(a)
    (Path(a.out) / f"{a.what}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
