"""CIFAR-10 on a lent GPU: the R3GAN and StyleGAN2 presets for a fixed number of images, then FID.

    python benchmarks/gpu_cifar10.py [--kimg 200] [--n 5000] [--out runs/gpu_c10]

One command, under 10 minutes on one H200 at the defaults: each of `configs/cifar10_r3gan.yaml` and
`configs/cifar10_stylegan2.yaml` (their published widths, batch and schedules; bf16) trains for
--kimg thousand images on the GPU (`train.steps` = kimg x 1000 / batch), then `gankit eval`
measures Inception FID and KID of --n samples against 10,000 training images. It prints, and writes
to OUT/gpu_cifar10.json: per preset, the steps, the images/s of training (median of the logged
intervals after the first) and the scores. The data is ../shared/data/cifar10/cifar10_train.npz
(the presets' path). A few hundred thousand images are a smoke test of the recipes at full size
and of the GPU path, not their published FIDs (20M images for R3GAN, 100M for StyleGAN2-ADA).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("cifar10_r3gan", "cifar10_stylegan2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kimg", type=float, default=200)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=Path("runs/gpu_c10"))
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_cifar10.py: no CUDA device here (this script is for a lent GPU machine)")
    from gankit.config import load_config
    from gankit.training.loop import train
    from gankit.analysis.evaluate import evaluate_run

    results = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "kimg": a.kimg}
    for name in PRESETS:
        base = load_config(str(ROOT / "configs" / f"{name}.yaml"), [])
        steps = max(2, int(a.kimg * 1000 / base.train.batch_size))
        cfg = load_config(str(ROOT / "configs" / f"{name}.yaml"),
                          [f"train.steps={steps}", "train.device=cuda", "train.max_minutes=0", "train.log_every=50",
                           f"train.sample_every={steps}", f"train.checkpoint_every={steps}"])
        t0 = time.perf_counter()
        train(cfg, a.out / name, quiet=True)
        seconds = time.perf_counter() - t0
        recs = [json.loads(x) for x in (a.out / name / "metrics.jsonl").read_text().splitlines() if "images_per_s" in x]
        ips = statistics.median(r["images_per_s"] for r in recs[1:]) if len(recs) > 1 else float("nan")
        scores = evaluate_run(a.out / name, ["fid", "kid"], a.n, features="inception", device="cuda", n_real=10000)
        results[name] = {"steps": steps, "batch": cfg.train.batch_size, "train_seconds": round(seconds, 1),
                         "images_per_s": round(ips, 1), "fid": scores.get("fid"), "kid": scores.get("kid")}
        print(f"{name}: {steps} steps x {cfg.train.batch_size} in {seconds:.0f} s, {ips:.0f} images/s; "
              f"FID {scores.get('fid'):.2f}, KID {scores.get('kid'):.4f}", flush=True)
    (a.out / "gpu_cifar10.json").write_text(json.dumps(results, indent=1))
    json.dump(results, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
