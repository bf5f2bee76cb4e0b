"""GPU checks for the speed issue, run on a lent GPU machine (one short script).

1. The bench table (plain DCGAN step vs gankit's step and full loop) on the GPU.
2. No host synchronisation inside the step: with torch's sync debug mode on, count the
   synchronising calls of a 40-step and a 120-step run (set-up, the final log line and
   the final checkpoint synchronise; the steps must not, so the counts must be equal).
3. torch.compile of G and D (no penalty): seconds per step with and without.

    PYTHONPATH=src python benchmarks/gpu_check.py
"""
from __future__ import annotations

import collections
import tempfile
import time
import warnings
from pathlib import Path

import torch

from gankit.api.bench import gankit_config, gankit_seconds_per_step, random_images, run_bench
from gankit.training.loop import train


def sync_calls(ds, steps: int) -> collections.Counter:
    cfg = gankit_config(32, 1, 64, "bf16", True, "cuda", steps, periodic=False)
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as w, tempfile.TemporaryDirectory() as d:
            warnings.simplefilter("always")
            train(cfg, Path(d) / "run", ds=ds, quiet=True)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return collections.Counter(f"{x.filename.split('/')[-1]}:{x.lineno}" for x in w if "synchroniz" in str(x.message))


def main() -> None:
    run_bench("cuda")  # prints as it goes
    ds = random_images(1024, 1, 32)
    a, b = sync_calls(ds, 40), sync_calls(ds, 120)
    print(f"\nsynchronising calls: 40 steps {sum(a.values())}, 120 steps {sum(b.values())}; per place (120 steps): {dict(b)}", flush=True)
    for compile_ in (False, True):
        t0 = time.perf_counter()
        s = gankit_seconds_per_step(ds, 32, 1, 64, "bf16", True, "cuda", 30, 230, 1, periodic=False,
                                    extra=(f"train.compile={str(compile_).lower()}",))
        print(f"compile={compile_}: {1e3 * s:.2f} ms/step, {64 / s:.0f} images/s (measured in {time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
