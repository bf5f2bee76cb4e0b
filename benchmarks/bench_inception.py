"""Inception (TF-FID weights) feature throughput on this machine, in images per second.

Compares, side by side in one run, a batch-1 loop with batched calls at several sizes,
as shipped and after `torch.jit.freeze` (conv+BN folding), and reports the largest
feature difference between the two. Median of --repeats runs.

    .venv/bin/python benchmarks/bench_inception.py [--n 100] [--repeats 3]
    .venv/bin/python benchmarks/bench_inception.py --engines [--n 40] [--repeats 5]

--engines: the engines `gankit eval` can use (TorchScript as before, onnxruntime running the same
network), and OpenVINO in float32 where it is installed (not a gankit dependency: measured to see what
onnxruntime leaves), at 1 and 2 threads, alternated within each repeat; medians and the ratios.
"""
from __future__ import annotations

import argparse
import importlib.util
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


def openvino_runner(threads: int):
    """OpenVINO running the same ONNX file `gankit eval` exports, in float32 (asked for: on CPUs with
    bfloat16 it may otherwise compute in it, which changes the features): a second engine, measured to
    see whether onnxruntime leaves speed behind. Not used by gankit; None when not installed."""
    if importlib.util.find_spec("openvino") is None:
        return None
    import numpy as np
    import openvino as ov

    from gankit.metrics.features import load_inception
    from gankit.paths import cache_dir

    _, digest = load_inception()
    onnx = next(cache_dir().glob(f"inception-{digest[:16]}-*.onnx"))  # written by the onnxruntime runner first
    compiled = ov.Core().compile_model(str(onnx), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
                                                           "PERFORMANCE_HINT": "LATENCY"})
    return lambda x: compiled(x.numpy())[0].astype(np.float64)


def engines(n: int, repeats: int) -> None:
    import os

    from gankit.metrics.features import INCEPTION_BATCH, inception_runner

    net, digest = load_inception()
    x = torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    print(f"{n} images, batch {INCEPTION_BATCH}, median of {repeats} alternating repeats; "
          "ratios and feature differences against torch (TorchScript)\n")
    header = False
    for threads in (1, 2):
        torch.set_num_threads(threads)
        runs = {}
        for engine in ("torch", "onnxruntime"):
            os.environ["GANKIT_INCEPTION_ENGINE"] = engine
            runs[engine] = inception_runner(net, digest)[0]
        if (ov := openvino_runner(threads)) is not None:
            runs["openvino f32"] = ov
        if not header:
            print("| threads | " + " | ".join(f"{e} images/s" for e in runs) + " | "
                  + " | ".join(f"{e} ratio, max difference" for e in list(runs)[1:]) + " |")
            print("|---" * (2 * len(runs)) + "|")
            header = True
        times: dict[str, list[float]] = {e: [] for e in runs}
        feats = {}
        with torch.inference_mode():
            for e, f in runs.items():
                feats[e] = f(inception_input(x[:INCEPTION_BATCH]))  # warm-up
            for _ in range(repeats):
                for e, f in runs.items():
                    t0 = time.perf_counter()
                    for i in range(0, n, INCEPTION_BATCH):
                        f(inception_input(x[i:i + INCEPTION_BATCH]))
                    times[e].append(time.perf_counter() - t0)
        r = {e: n / statistics.median(v) for e, v in times.items()}
        rest = [f"{r[e] / r['torch']:.2f}, {float(abs(feats['torch'] - feats[e]).max()):.1e}" for e in list(runs)[1:]]
        print(f"| {threads} | " + " | ".join(f"{v:.1f}" for v in r.values()) + " | " + " | ".join(rest) + " |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 25, 50])
    ap.add_argument("--engines", action="store_true", help="TorchScript against onnxruntime, 1 and 2 threads")
    a = ap.parse_args()
    if a.engines:
        return engines(a.n, a.repeats)
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
