"""pix2pix against an L1-only U-Net on CIFAR-10 colourisation: the same minutes, scored on held-out images.

    .venv/bin/python benchmarks/translation_cifar10.py --minutes 20 --seeds 0 1 --out /tmp/p2p_bench

CIFAR-10's training images (../shared/data/cifar10/cifar10_train.npz) are split once, by a seeded
permutation, into 49,000 for training and 1,000 held out (--held-out); the task is grey (luminance) in, colour
out (data.pairs=grey). Both runs are configs/pix2pix_cpu.yaml on that data (U-Net with 5 halvings,
width 32, batch 16, pix2pix's losses and Adam); the L1-only one sets loss.adversarial=0, so it has no
D step and takes more steps in the same minutes. The runs of one seed train side by side, one thread
each, for --minutes of training. Each is then scored on the 1,000 held-out pairs by `gankit eval`
(L1, PSNR, SSIM against the targets; FID and KID of the outputs against the targets, Inception), and
so is the grey input itself (shown as colour: what a model that adds no colour scores).
`--methods cyclegan` trains configs/cyclegan_cpu.yaml instead (alone, two threads): A is the grey half of
the training images, B the colour other half, so it never sees a pair; it is scored the same way.
Writes results_METHODS.json / .md and triplets_METHODS.png (rows: input, each method, target) into --out.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10" / "cifar10_train.npz"
# batch 16: the pix2pix_cpu preset's batch when these figures were taken; benchmarks/parity/pix2pix_loop.py runs batch 1
METHODS = {"l1_only": ("pix2pix_cpu", ["loss.adversarial=0", "train.batch_size=16"]), "pix2pix": ("pix2pix_cpu", ["train.batch_size=16"]),
           "cyclegan": ("cyclegan_cpu", [])}


def split(cifar: Path, out: Path, held_out: int) -> tuple[Path, Path]:
    d = np.load(cifar)
    x = d["images"].transpose(0, 3, 1, 2)  # NHWC -> NCHW
    perm = np.random.default_rng(0).permutation(len(x))
    train, test = out / "cifar_train.npz", out / "cifar_heldout.npz"
    if not train.exists():
        np.savez(train, images=x[perm[held_out:]])
        np.savez(test, images=x[perm[:held_out]])
    return train, test


def train(train_npz: Path, run: Path, minutes: float, seed: int, method: str, threads: int) -> subprocess.Popen:
    preset, extra = METHODS[method]
    cmd = [sys.executable, "-m", "gankit", "train", str(ROOT / "configs" / f"{preset}.yaml"), f"data.source={train_npz}",
           f"train.max_minutes={minutes}", f"train.seed={seed}", f"train.threads={threads}", "train.sample_every=2000", *extra, "--out", str(run)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(run.with_suffix(".log"), "w"))


def evaluate(run: Path, test_npz: Path, n: int) -> dict:
    from gankit import evaluate as gk_evaluate

    res = gk_evaluate(run, n=n, real=str(test_npz))
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    return {k: res[k] for k in ("l1", "psnr", "ssim", "fid", "kid", "cycle") if k in res} | {"steps": metrics["step"], "images": metrics["images"]}


def grey_baseline(test_npz: Path) -> dict:
    """The input itself as the output: grey, repeated in three channels."""
    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.metrics import core
    from gankit.metrics.features import FEATURE_NETS
    from gankit.metrics.paired import l1, psnr, ssim

    ds = load_dataset(DataConfig(source=str(test_npz), pairs="grey"))
    b = ds.to_float(torch.arange(len(ds)))
    a = (ds.inputs.float() / 127.5 - 1).expand(-1, 3, -1, -1)
    net = FEATURE_NETS.get("inception")(ds)
    rf, ff = net.run(b), net.run(a)
    kid, _ = core.kid(rf, ff, subset_size=min(1000, len(ds)))
    return {"l1": l1(a, b), "psnr": psnr(a, b), "ssim": ssim(a, b), "fid": core.fid(rf, ff), "kid": kid}


def triplets(runs: dict[str, Path], test_npz: Path, path: Path) -> None:
    import gankit
    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.viz import save_grid

    ds = load_dataset(DataConfig(source=str(test_npz), pairs="grey"))
    idx = torch.arange(10)
    a = ds.inputs[idx].float() / 127.5 - 1
    outs = []
    for run in runs.values():
        g = gankit.load(run)
        outs.append(torch.from_numpy(np.stack(g.translate(list(ds.inputs[idx].permute(0, 2, 3, 1).numpy())))).permute(0, 3, 1, 2).float() / 127.5 - 1)
    rows = [a.expand(-1, 3, -1, -1), *outs, ds.to_float(idx)]
    save_grid(torch.cat(rows), path, nrow=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", default="/tmp/p2p_bench")
    ap.add_argument("--held-out", type=int, default=1000)
    ap.add_argument("--cifar", default=str(CIFAR), help="cifar10_train.npz (default: ../shared/data/cifar10/)")
    ap.add_argument("--methods", nargs="+", default=["l1_only", "pix2pix"], choices=list(METHODS),
                    help="trained side by side, one thread each (a single method: two threads)")
    a = ap.parse_args()
    cifar = Path(a.cifar)
    if not cifar.exists():
        raise SystemExit(f"{cifar} is missing (../shared/data is on developer and CI machines)")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    train_npz, test_npz = split(cifar, out, a.held_out)
    results: dict = {"minutes": a.minutes, "seeds": a.seeds, "held_out": a.held_out, "runs": {}}
    for seed in a.seeds:
        runs = {m: out / f"{m}_s{seed}" for m in a.methods}
        threads = 1 if len(a.methods) > 1 else 2
        procs = [train(train_npz, runs[m], a.minutes, seed, m, threads) for m in a.methods if not (runs[m] / "report.html").exists()]
        for p in procs:
            if p.wait():
                raise SystemExit(f"a training failed: see {out}/*.log")
        for m, run in runs.items():
            results["runs"][f"{m}_s{seed}"] = evaluate(run, test_npz, a.held_out)
            print(m, seed, results["runs"][f"{m}_s{seed}"], flush=True)
        if seed == a.seeds[0]:
            triplets(runs, test_npz, out / f"triplets_{'_'.join(a.methods)}.png")
    results["grey_input"] = grey_baseline(test_npz)
    (out / f"results_{'_'.join(a.methods)}.json").write_text(json.dumps(results, indent=1))
    lines = ["| method | L1 | PSNR (dB) | SSIM | FID | KID | steps |", "|---|---|---|---|---|---|---|"]
    for m in a.methods:
        rs = [results["runs"][f"{m}_s{s}"] for s in a.seeds]
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        lines.append(f"| {m} (median of {len(rs)} seed{'s' if len(rs) > 1 else ''}) | {med['l1']:.4f} | {med['psnr']:.2f} | {med['ssim']:.3f} | "
                     f"{med['fid']:.1f} | {med['kid']:.4f} | {med['steps']:.0f} |")
    g = results["grey_input"]
    lines.append(f"| the grey input itself | {g['l1']:.4f} | {g['psnr']:.2f} | {g['ssim']:.3f} | {g['fid']:.1f} | {g['kid']:.4f} | - |")
    (out / f"results_{'_'.join(a.methods)}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
