"""bf16 against fp32 at the same number of steps: classifier FID on mnist5k, several seeds.

Trains a preset (default: the demo preset) for --steps at each precision and seed, with a
checkpoint every --every steps, then scores every checkpoint's G_ema with the classifier FID
(--n generated against --n real mnist5k digits, the same real subset for all). bf16 runs
use channels_last (as the preset does); fp32 runs do not (it does not change the numbers).
Runs already complete in --out are reused, so two instances can train in parallel, e.g.

    .venv/bin/python benchmarks/bf16_quality.py --precisions fp32 --set train.threads=1 &
    .venv/bin/python benchmarks/bf16_quality.py --precisions bf16 --set train.threads=1 &
    wait; .venv/bin/python benchmarks/bf16_quality.py   # scores all, prints the table
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from gankit.checkpoint import list_checkpoints
from gankit.config import load_config, make_config
from gankit.training.loop import train
from gankit.analysis.evaluate import evaluate_run

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default=str(ROOT / "configs" / "mnist_conditional.yaml"))
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--out", default="runs/bf16q")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra overrides, e.g. train.threads=1")
    a = ap.parse_args()
    base = load_config(a.preset, a.set).to_dict()
    fids: dict[tuple[str, int], dict[int, float]] = {}
    for prec in a.precisions:
        for seed in a.seeds:
            out = Path(a.out) / f"{prec}-s{seed}"
            cfg = make_config(base, [f"train.precision={prec}", f"train.channels_last={str(prec == 'bf16').lower()}",
                                     f"train.steps={a.steps}", f"train.checkpoint_every={a.every}", f"train.seed={seed}",
                                     f"train.keep_checkpoints={a.steps // a.every + 1}"])
            train(cfg, out, resume="auto", quiet=True)
            fids[prec, seed] = {}
            for ck in reversed(list_checkpoints(out / "checkpoints")):  # oldest first
                fids[prec, seed][int(ck.stem.split("_")[1])] = evaluate_run(ck, ["fid"], a.n, features="classifier", seed=0)["fid"]
            print(json.dumps({"precision": prec, "seed": seed, "fid": fids[prec, seed]}), flush=True)
    steps = sorted({s for v in fids.values() for s in v})
    print(f"\nclassifier FID ({a.n} vs {a.n}), {Path(a.preset).name}, seeds {a.seeds}; mean [per seed]\n")
    print("| steps | " + " | ".join(a.precisions) + " |\n|---|" + "---|" * len(a.precisions))
    for s in steps:
        cells = []
        for prec in a.precisions:
            v = [fids[prec, seed][s] for seed in a.seeds if s in fids[prec, seed]]
            cells.append(f"{statistics.mean(v):.1f} [{', '.join(f'{x:.1f}' for x in v)}]" if v else "-")
        print(f"| {s:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
