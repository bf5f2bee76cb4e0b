"""Training throughput on 1 and N processes (torchrun, gloo on the CPU), side by side in one run.

Each process gets one thread; the config is the demo preset at its global batch of 64. The
rounds alternate the world sizes; images/s is the median over the logged intervals after the
first, and the table gives the median over rounds and the scaling efficiency
(images/s on N processes / (N x images/s on one)).

    .venv/bin/python benchmarks/scale_out.py --procs 1 2 --steps 300 --repeats 3
    .venv/bin/python benchmarks/scale_out.py --config benchmarks/cifar10/resnet.yaml --steps 30 --log-every 10

The second: a preset whose step is mostly arithmetic (the CIFAR-10 ResNet, about 70 images/s here on one thread),
where the steps' fixed costs and the communication are a small share.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(n: int, steps: int, config: str, out: Path, log_every: int = 50) -> float:
    train = ["-m", "gankit", "train", config, f"train.steps={steps}", f"train.log_every={log_every}", "train.sample_every=100000",
             "train.checkpoint_every=100000", "train.threads=1", "train.max_minutes=0", "--out", str(out)]
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    cmd = [sys.executable, *train] if n == 1 else [torchrun, "--standalone", "--nproc_per_node", str(n), *train]
    subprocess.run(cmd, check=True, env=os.environ | {"OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["images_per_s"] for r in recs[1:] if "images_per_s" in r)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--config", default=str(ROOT / "configs" / "mnist_conditional.yaml"))
    ap.add_argument("--log-every", type=int, default=50, help="steps per logged interval (fewer for a slow config)")
    a = ap.parse_args()
    rates: dict[int, list[float]] = {n: [] for n in a.procs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for n in a.procs:
                rates[n].append(one_run(n, a.steps, a.config, Path(tmp) / f"r{r}-n{n}", a.log_every))
    base = statistics.median(rates[a.procs[0]]) / a.procs[0]
    print(f"| processes (1 thread each) | images/s (median of {a.repeats}) | runs | scaling efficiency |")
    print("|---|---|---|---|")
    for n in a.procs:
        m = statistics.median(rates[n])
        print(f"| {n} | {m:.0f} | {' / '.join(f'{x:.0f}' for x in rates[n])} | {m / (n * base):.2f} |")


if __name__ == "__main__":
    main()
