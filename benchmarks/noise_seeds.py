"""What seeded per-sample noise costs a StyleGAN2 or FastGAN training step.

G's noise inputs draw each sample's noise from its own seed (`models.layers.per_sample_noise`), so
that N processes generate what one does; without seeds they draw one tensor from the global RNG.
This times G's forward and backward in training mode both ways, alternating, and prints the
median of each and their ratio.

    .venv/bin/python benchmarks/noise_seeds.py [--arch stylegan2] [--res 32] [--batch 64] [--repeats 15]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from gankit.config import make_config
from gankit.models import build_models, make_spec
from gankit.models.layers import noise_inputs, per_sample_noise


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="stylegan2")
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    over = [f"model.arch={a.arch}", f"model.width={a.width}", "model.z_dim=128"]
    if a.arch == "stylegan2" and a.res == 32:
        over.append("model.widths=[128,128,64,32]")  # benchmarks/cifar10/stylegan2.yaml
    cfg = make_config({}, over)
    G, _ = build_models(make_spec(cfg.model, (3, a.res, a.res), 0, "image"), a.arch)
    G = G.train().to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(0)
    layers = noise_inputs(G)
    times: dict[str, list[float]] = {"global RNG": [], "seeded per sample": []}

    def step(seeded: bool) -> float:
        z = torch.randn(a.batch, 128, generator=gen)
        seeds = torch.randint(0, 2**62, (a.batch,), generator=gen) if seeded else None
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16), per_sample_noise(layers, seeds):
            out = G(z, None)
        out.float().square().mean().backward()
        G.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for _ in range(3):  # warm up
        step(False), step(True)
    for _ in range(a.repeats):
        times["global RNG"].append(step(False))
        times["seeded per sample"].append(step(True))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{a.arch} at {a.res}x{a.res}, batch {a.batch}, {len(layers)} noise inputs, {a.threads} thread(s), "
          f"G forward + backward, bf16, median of {a.repeats}:")
    for k, v in med.items():
        print(f"  {k:18s} {v * 1000:8.1f} ms")
    print(f"  ratio seeded / global: {med['seeded per sample'] / med['global RNG']:.3f}")


if __name__ == "__main__":
    main()
