"""Where a step's time goes on several processes: compute, and each kind of collective.

    torchrun --standalone --nproc_per_node 2 benchmarks/scale_out_breakdown.py [--steps 200]
    PYTHONPATH=OTHER/src torchrun ... benchmarks/scale_out_breakdown.py    # another checkout, for a before/after

Trains the demo preset (`configs/mnist_conditional.yaml`, global batch 64, one thread per process)
for --steps steps with every call of `gankit.training.dist.collective` timed and filed under the function
that made it (gradient buckets launched / waited for, the flat gradient all-reduce of older
checkouts, batch norm over the global batch, stop agreement, logged means). Rank 0 prints, per
step, the milliseconds spent inside each kind of call (communication and waiting for the other
rank) and the rest (compute and everything else), over the steps after the first 20.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    a = ap.parse_args()
    torch.set_num_threads(1)
    import gankit.training.dist as gd
    from gankit.config import load_config
    from gankit.training.loop import train

    spent: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    clock = {"on": False}
    original = gd.collective

    def timed(fn, *args, **kw):
        if not clock["on"]:
            return original(fn, *args, **kw)
        who = sys._getframe(1).f_code.co_name
        if who == "_call":  # World's methods go through World._call: name the method
            who = sys._getframe(2).f_code.co_name
        t0 = time.perf_counter()
        try:
            return original(fn, *args, **kw)
        finally:
            spent[who] += time.perf_counter() - t0
            calls[who] += 1

    gd.collective = timed
    import gankit.training.loop as loop_mod

    steps_seen = {"n": 0, "t0": 0.0}
    real_step = loop_mod.STEPS.get("gan")

    def counting_step(p, k, *rest):
        steps_seen["n"] += 1
        if steps_seen["n"] == 21:  # start the clock after a warm-up
            clock["on"], steps_seen["t0"] = True, time.perf_counter()
            spent.clear(), calls.clear()
        return real_step(p, k, *rest)

    loop_mod.STEPS._items["gan"] = counting_step  # the registry's entry, for this process only
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(str(ROOT / "configs" / "mnist_conditional.yaml"),
                          [f"train.steps={a.steps}", "train.log_every=50", "train.sample_every=100000", "train.checkpoint_every=100000",
                           "train.threads=1", "train.max_minutes=0"])
        train(cfg, Path(out), quiet=True)
    total = time.perf_counter() - steps_seen["t0"]
    n = steps_seen["n"] - 20
    if int(os.environ.get("RANK", "0")) == 0:
        names = {"_launch": "gradient buckets: launch (async)", "finish": "gradient buckets: wait + loss",
                 "average_grads": "gradients: flat all-reduce (blocking)", "forward": "batch norm over the global batch",
                 "any": "stop agreement (blocking)", "sum": "stop agreement / sums (blocking)", "__call__": "stop agreement (one step late)",
                 "mean": "logged means", "global_batch_mean": "running means"}
        print(f"{gd.__file__}: {n} steps, {1000 * total / n:.1f} ms per step (global batch 64)\n")
        print("| part | ms per step | calls per step |\n|---|---|---|")
        for who, s in spent.most_common():
            print(f"| {names.get(who, who)} | {1000 * s / n:.2f} | {calls[who] / n:.1f} |")
        print(f"| compute and the rest | {1000 * (total - sum(spent.values())) / n:.1f} | |")


if __name__ == "__main__":
    main()
