"""Does augmentation help on small data? The same preset on a 500-image subset of mnist5k,
trained for the same number of steps without augmentation, with DiffAugment, and with
DiffAugment plus the ADA-style adaptive probability; classifier FID against all of mnist5k.

    .venv/bin/python benchmarks/augment_small.py [--limit 500] [--steps 1500] [--out runs/augment]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gankit.config import load_config
from gankit.training.loop import train
from gankit.analysis.evaluate import evaluate_run

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "none": [],
    "diffaugment": ["augment.policy=color,translation,cutout"],
    "diffaugment+adaptive": ["augment.policy=color,translation,cutout", "augment.adaptive=true", "augment.p=0.0",
                             "augment.speed_kimg=20"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="mnist_dcgan")
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--out", default="runs/augment")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    a = ap.parse_args()
    rows = []
    for name in a.variants:
        over = [f"data.limit={a.limit}", f"train.steps={a.steps}", "train.sample_every=500", "train.checkpoint_every=500",
                *VARIANTS[name], *a.set]
        cfg = load_config(ROOT / "configs" / f"{a.preset}.yaml", over)
        out = Path(a.out) / name
        t0 = time.perf_counter()
        train(cfg, out, resume="auto", quiet=True)
        minutes = (time.perf_counter() - t0) / 60
        # against all of mnist5k (not only the 500 seen): generalisation, not memorisation
        res = evaluate_run(out, ["fid", "pr", "classes"], n=5000, real="mnist5k", features="classifier")
        rows.append({"variant": name, "fid_classifier": res["fid"], "precision": res["precision"], "recall": res["recall"],
                     "classes_covered": res["classes_covered"], "minutes": minutes})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{a.preset}, {a.limit} training images, {a.steps} steps each; classifier FID against all 5000 mnist5k images")
    print("| augmentation | classifier FID | precision | recall | classes | minutes |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['fid_classifier']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['classes_covered']} | {r['minutes']:.1f} |")


if __name__ == "__main__":
    main()
