"""Inception (TF-FID weights) feature throughput on this machine, in images per second.

Compares, side by side in one run, a batch-1 loop with batched calls at several sizes,
as shipped and after `torch.jit.freeze` (conv+BN folding), and reports the largest
feature difference between the two. Median of --repeats runs.

    .venv/bin/python benchmarks/bench_inception.py [--n 100] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from gankit.metrics.features import inception_input, load_inception


def rate(net, x: torch.Tensor, batch: int, repeats: int) -> float:
    times = []
    with torch.inference_mode():
        net(inception_input(x[:batch]))  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(0, len(x), batch):
                net(inception_input(x[i:i + batch]))
            times.append(time.perf_counter() - t0)
    return len(x) / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 25, 50])
    a = ap.parse_args()
    torch.manual_seed(0)
    net, _ = load_inception()
    x = torch.rand(a.n, 1, 32, 32) * 2 - 1
    frozen = torch.jit.optimize_for_inference(torch.jit.freeze(net.eval()))
    with torch.inference_mode():
        f1, f2 = net(inception_input(x[:20])), frozen(inception_input(x[:20]))
    print(f"threads {torch.get_num_threads()}; max |frozen - shipped| feature difference {float((f1 - f2).abs().max()):.2e} "
          f"(features up to {float(f1.abs().max()):.2f})")
    print("| variant | batch | images/s |\n|---|---|---|")
    for name, model in (("shipped", net), ("frozen", frozen)):
        for batch in a.batches:
            n = min(a.n, 20) if batch <= 4 else a.n
            print(f"| {name} | {batch} | {rate(model, x[:n], batch, a.repeats):.1f} |", flush=True)
    from gankit.metrics.features import INCEPTION_BATCH

    r = rate(net, x, INCEPTION_BATCH, 1)
    print(f"\nFID with 10k generated samples (real statistics cached): about {10000 / r / 60:.0f} minutes of features at {r:.1f} images/s")


if __name__ == "__main__":
    main()
