"""Training speed with the default thread count, alone and beside a CPU-bound neighbour.

    .venv/bin/python benchmarks/threads_under_load.py [--repeats 3] [--steps 300]

A small `digits` run (16x16, DCGAN width 16, batch 64) as a subprocess, in three settings, each
alone and beside a neighbour (one Python busy loop per core but one), alternated within each
repeat; images/s of the last logged interval, median of the repeats:

- before: gankit before this change, all cores (`train.threads` = the core count);
- default: `train.threads=0` as shipped (the cores idle at the start);
- passive: all cores with OMP_WAIT_POLICY=PASSIVE (OpenMP's threads sleep while they wait);
- one thread: `train.threads=1`.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from gankit.training.cpu import cores

SETTINGS = {"before": ({}, None), "default": ({}, 0), "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, None), "one thread": ({}, 1)}


def rate(env_extra: dict[str, str], threads: int | None, steps: int) -> float:
    n = cores() if threads is None else threads
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(env_extra)
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([sys.executable, "-m", "gankit", "train", "data.source=digits", "data.resolution=16", "model.width=16",
                            "model.z_dim=16", f"train.steps={steps}", "train.batch_size=64", f"train.log_every={steps // 3}",
                            "train.sample_every=1000000", "train.checkpoint_every=1000000", f"train.threads={n}", "--out", out],
                           capture_output=True, text=True, env=env, timeout=1800)
    found = re.findall(r"img/s (\d+)", r.stderr)
    if r.returncode or not found:
        raise SystemExit(f"training failed: {r.stderr[-500:]}")
    return float(found[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    a = ap.parse_args()
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(a.repeats):
        for load in ("alone", "beside a neighbour"):
            burners = []
            if load != "alone":
                burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(1, cores() - 1))]
                time.sleep(0.5)
            try:
                for name, (env, threads) in SETTINGS.items():
                    results.setdefault((name, load), []).append(rate(env, threads, a.steps))
            finally:
                for b in burners:
                    b.kill()
                    b.wait()
    print(f"{cores()} cores; images/s, median of {a.repeats} alternating repeats\n")
    print("| setting | alone | beside a neighbour |\n|---|---|---|")
    for name in SETTINGS:
        print(f"| {name} | {statistics.median(results[(name, 'alone')]):.0f} | {statistics.median(results[(name, 'beside a neighbour')]):.0f} |")


if __name__ == "__main__":
    main()
