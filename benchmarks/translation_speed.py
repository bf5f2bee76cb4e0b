"""Translation speed: gankit's pix2pix and CycleGAN steps against plain PyTorch steps on the same networks,
and one large image translated whole and in tiles, with its time and peak memory.

    .venv/bin/python benchmarks/translation_speed.py [--repeats 3] [--threads 2]

Training: the CPU presets' networks at fixed batches (configs/pix2pix_cpu.yaml: U-Net, 5 halvings, width
32, batch 16, the preset's batch when the figures were taken (it now trains at pix2pix's batch 1);
configs/cyclegan_cpu.yaml: 4 residual blocks, width 16, batch 8) on photo_crops.
- plain: the networks built by gankit, a step written here from the papers (pix2pix: BCE-with-logits
  GAN loss + 100 L1, D then G; CycleGAN: least squares, cycle 10, the 50-image pool, G then D), Adam,
  timed per step after warm-up;
- gankit: `gankit train` for two lengths, nothing periodic inside (logs, grids, checkpoints only at
  the end); the per-step time is the difference of the two runs' training seconds over the step
  difference, so start-up and the final save cancel out.
Images/s (one per input image) are medians of --repeats, the settings alternated within each repeat.

Large image: a 2048x2048 grey image through the pix2pix_cpu network (G_ema of a 1-step run), whole
and with `--tile 512` (exact tiling), each in a fresh process: seconds and the process's peak RSS.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"pix2pix": ROOT / "configs" / "pix2pix_cpu.yaml", "cyclegan": ROOT / "configs" / "cyclegan_cpu.yaml"}
BATCH = {"pix2pix": 16, "cyclegan": 8}  # the batches measured (benchmarks/RESULTS.md)


def plain_rate(family: str, steps: int, threads: int) -> float:
    from gankit.config import load_config
    from gankit.data import load_dataset
    from gankit.models import build_models, make_spec

    torch.set_num_threads(threads)
    cfg = load_config(PRESETS[family], [f"train.batch_size={BATCH[family]}"])
    ds = load_dataset(cfg.data)
    spec = make_spec(cfg.model, ds.shape, 0, "pairs", in_channels=ds.in_channels)
    torch.manual_seed(0)
    G, D = build_models(spec, cfg.model.arch, cycle=family == "cyclegan")
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    B = cfg.train.batch_size
    bce = F.binary_cross_entropy_with_logits
    pools: dict[str, list[torch.Tensor]] = {"a": [], "b": []}

    def pool(name: str, x: torch.Tensor) -> torch.Tensor:
        out, store = [], pools[name]
        for img in x.detach():
            if len(store) < 50:
                store.append(img)
                out.append(img)
            elif torch.rand(()) < 0.5:
                j = int(torch.randint(50, ()))
                out.append(store[j])
                store[j] = img
            else:
                out.append(img)
        return torch.stack(out)

    def step(i: int) -> None:
        idx = torch.randint(len(ds), (B,))
        a, b = ds.inputs[idx].float() / 127.5 - 1, ds.x[idx].float() / 127.5 - 1
        if family == "pix2pix":
            fake = G(a)
            r, f = D(torch.cat([a, b], 1)), D(torch.cat([a, fake.detach()], 1))
            loss_d = bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            f = D(torch.cat([a, fake], 1))
            loss_g = bce(f, torch.ones_like(f)) + 100 * (fake - b).abs().mean()
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
        else:
            b = b[torch.randperm(B)]  # unpaired
            fb, fa = G.ab(a), G.ba(b)
            db, da = D.on_b(fb), D.on_a(fa)
            loss_g = (F.mse_loss(db, torch.ones_like(db)) + F.mse_loss(da, torch.ones_like(da))
                      + 10 * ((G.ba(fb) - a).abs().mean() + (G.ab(fa) - b).abs().mean()))
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            pb, pa = pool("b", fb), pool("a", fa)
            loss_d = 0.0
            for Dx, real, fake in ((D.on_b, b, pb), (D.on_a, a, pa)):
                r, f = Dx(real), Dx(fake)
                loss_d = loss_d + 0.5 * (F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f)))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()

    for i in range(5):
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    return B * steps / (time.perf_counter() - t0)


def gankit_seconds(family: str, steps: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([sys.executable, "-m", "gankit", "train", str(PRESETS[family]), f"train.steps={steps}", "train.max_minutes=0",
                            f"train.batch_size={BATCH[family]}",
                            f"train.threads={threads}", f"train.log_every={steps}", f"train.sample_every={steps}",
                            f"train.checkpoint_every={steps}", "log.report=false", "--out", out], capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(r.stderr[-800:])
        return json.loads(Path(out, "metrics.jsonl").read_text().splitlines()[-1])["seconds"]


def gankit_rate(family: str, steps: int, threads: int) -> float:
    B = BATCH[family]
    short, long = gankit_seconds(family, 10, threads), gankit_seconds(family, 10 + steps, threads)
    return B * steps / max(long - short, 1e-9)


LARGE = """
import resource, sys, time, numpy as np, torch
import gankit
torch.set_num_threads({threads})
g = gankit.load(sys.argv[1])
img = (np.random.default_rng(0).random((2048, 2048)) * 255).astype(np.uint8)
t = time.perf_counter()
out = g.translate(img, tile={tile})
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, out.shape)
"""


def large_image(run: Path, tile: int, threads: int) -> tuple[float, float]:
    r = subprocess.run([sys.executable, "-c", LARGE.format(tile=tile, threads=threads), str(run)], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr[-800:])
    sec, mb, _ = r.stdout.split(maxsplit=2)
    return float(sec), float(mb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(a.repeats):
        for family in PRESETS:
            rates.setdefault((family, "plain"), []).append(plain_rate(family, a.steps, a.threads))
            rates.setdefault((family, "gankit"), []).append(gankit_rate(family, a.steps, a.threads))
    lines = ["| step | plain PyTorch img/s | gankit img/s | gankit / plain |", "|---|---|---|---|"]
    for family in PRESETS:
        p, g = statistics.median(rates[(family, "plain")]), statistics.median(rates[(family, "gankit")])
        lines.append(f"| {family} | {p:.0f} | {g:.0f} | {g / p:.2f} |")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "gankit", "train", str(PRESETS["pix2pix"]), "train.steps=1", "--out", out],
                       check=True, capture_output=True)
        whole = [large_image(Path(out), 10**6, a.threads) for _ in range(a.repeats)]
        tiled = [large_image(Path(out), 512, a.threads) for _ in range(a.repeats)]
    lines += ["", "| 2048x2048 grey -> colour, pix2pix_cpu network | seconds | peak RSS (MB) |", "|---|---|---|"]
    for name, runs in (("whole", whole), ("tiles of 512 (exact)", tiled)):
        lines.append(f"| {name} | {statistics.median(s for s, _ in runs):.1f} | {statistics.median(m for _, m in runs):.0f} |")
    print("\n".join(lines))
    print(json.dumps({"rates": {f"{k[0]} {k[1]}": v for k, v in rates.items()}, "whole": whole, "tiled": tiled}))


if __name__ == "__main__":
    main()
