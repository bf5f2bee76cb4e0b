"""Time to quality on mnist5k: the plain DCGAN recipe against a gankit preset.

Both train on this machine, one after the other (run nothing else meanwhile), for the same
wall-clock budget of training time (start-up excluded for both). Snapshots: the plain
recipe's G every 30 s of training; gankit's checkpoints every 250 steps (their `wall`
field is training time, checkpoint writes included). Every snapshot is then scored with
the classifier FID against mnist5k (same resizing, same real subset, same n).

The plain recipe's G has no EMA copy; it is scored both in eval mode (running statistics)
and in train mode (batch statistics, as pytorch/examples draws its samples), and the
better of the two counts. The answer: the training minutes gankit needs to reach the FID
the plain recipe has after the whole budget.

    .venv/bin/python benchmarks/time_to_quality.py [--minutes 10] [--gankit-minutes M] [--preset configs/mnist_conditional.yaml] [--out runs/ttq] [--skip-plain]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gankit.api.bench import PlainDCGAN, PlainG
from gankit.checkpoint import list_checkpoints
from gankit.config import DataConfig, load_config
from gankit.data import load_dataset
from gankit.training.loop import train
from gankit.analysis.evaluate import evaluate_run, evaluate_samples
from gankit.viz import line_chart

ROOT = Path(__file__).resolve().parents[1]


def train_plain(ds, minutes: float, out: Path, every_s: float = 30.0, seed: int = 0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plain = PlainDCGAN(32, 1, torch.device("cpu"), seed=seed)
    g = torch.Generator().manual_seed(seed)
    spent, step, next_snap = 0.0, 0, every_s
    while spent < 60 * minutes:
        perm = torch.randperm(len(ds), generator=g)
        for i in range(0, len(ds) - 63, 64):  # drop_last, as a DataLoader would
            t0 = time.perf_counter()
            plain.step(ds.to_float(perm[i:i + 64]))
            spent += time.perf_counter() - t0
            step += 1
            if spent >= next_snap or spent >= 60 * minutes:
                torch.save({"G": plain.G.state_dict(), "seconds": spent, "step": step}, out / f"snap_{step:06d}.pt")
                next_snap += every_s
            if spent >= 60 * minutes:
                break
    print(f"plain: {step} steps in {spent:.0f} s of training", flush=True)


@torch.no_grad()
def plain_fid(path: Path, ds, n: int, seed: int = 0) -> float:
    s = torch.load(path, weights_only=True)
    G = PlainG(32, 1)
    best = float("inf")
    for mode in ("eval", "train"):
        G.load_state_dict(s["G"])
        G.train(mode == "train")
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, 100, 1, 1, generator=gen)
        x = torch.cat([G(z[i:i + 500]) for i in range(0, n, 500)])
        best = min(best, evaluate_samples(x, ds, ["fid"], "classifier", seed)["fid"])
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--preset", default=str(ROOT / "configs" / "mnist_conditional.yaml"))
    ap.add_argument("--gankit-minutes", type=float, default=None, help="gankit's budget (default: --minutes)")
    ap.add_argument("--out", default="runs/ttq")
    ap.add_argument("--n", type=int, default=2000, help="samples per FID")
    ap.add_argument("--skip-training", action="store_true", help="only score the snapshots already in --out")
    ap.add_argument("--skip-plain", action="store_true", help="train only gankit; reuse the plain snapshots already in --out")
    a = ap.parse_args()
    out = Path(a.out)
    ds = load_dataset(DataConfig(source="mnist5k", resolution=32))
    name = Path(a.preset).stem
    if not a.skip_training:
        if not a.skip_plain:
            train_plain(ds, a.minutes, out / "plain")
        cfg = load_config(a.preset, [f"train.max_minutes={a.gankit_minutes or a.minutes}", "train.checkpoint_every=250", "train.keep_checkpoints=1000"])
        train(cfg, out / name, resume="auto", quiet=True)
    plain = [(torch.load(p, weights_only=True)["seconds"] / 60, plain_fid(p, ds, a.n)) for p in sorted((out / "plain").glob("snap_*.pt"))]
    ours = []
    for ck in list_checkpoints(out / name / "checkpoints"):
        r = evaluate_run(ck, ["fid"], a.n, features="classifier", seed=0)
        wall = torch.load(ck, weights_only=True, map_location="cpu")["wall"]
        ours.append((wall / 60, r["fid"]))
    ours.sort()
    target = plain[-1][1]
    reach = next((m for m, f in ours if f <= target), None)
    res = {"plain": plain, name: ours, "plain_final_fid": target, "gankit_minutes_to_reach": reach, "budget_minutes": a.minutes, "n": a.n}
    (out / "curve.json").write_text(json.dumps(res, indent=1))
    img = line_chart({"plain DCGAN recipe (fp32)": plain, f"gankit {name}": ours}, "training minutes", "classifier FID, lower is better",
                     title="Time to quality on mnist5k (2 CPU cores)", hline=(target, f"plain after {a.minutes:g} min: {target:.1f}"), ymax=6 * target)
    img.save(ROOT / "benchmarks" / "time_to_quality.png")
    print("| minutes | plain FID |\n|---|---|\n" + "\n".join(f"| {m:.2f} | {f:.2f} |" for m, f in plain))
    print(f"\n| minutes | gankit {name} FID |\n|---|---|\n" + "\n".join(f"| {m:.2f} | {f:.2f} |" for m, f in ours))
    print(f"\nplain after {plain[-1][0]:.1f} min: FID {target:.2f}; gankit reaches it after "
          + (f"{reach:.2f} min ({reach / plain[-1][0]:.2f} of the time)" if reach is not None else "-- (not within the budget)"))


if __name__ == "__main__":
    main()
