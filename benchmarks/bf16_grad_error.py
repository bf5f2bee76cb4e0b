"""Layer by layer: how far bf16 autocast moves the gradients of a GAN checkpoint from fp32's.

Takes a run folder or checkpoint (G and D as trained), one batch of its real data and one of
latents, and computes D's hinge-loss gradients and G's gradients once in fp32 and once under
bf16 autocast with channels_last. Prints each parameter's relative error ||g_bf16 - g_fp32|| /
||g_fp32|| and cosine, largest first.

    .venv/bin/python benchmarks/bf16_grad_error.py RUN_OR_CHECKPOINT [--batch 64] [--top 8]
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from gankit.config import make_config
from gankit.data import load_dataset
from gankit.models import build_models, make_spec
from gankit.training.state import load_target


def gradients(state, spec, arch, real, y, z, bf16: bool) -> dict[str, torch.Tensor]:
    G, D = build_models(spec, arch)
    G.load_state_dict(state["G"])
    D.load_state_dict(state["D"])
    if bf16:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        real = real.contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)  # the same spectral-norm power iterations in both runs
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        fake = G(z, y)
        loss_d = F.relu(1 - D(real, y).float()).mean() + F.relu(1 + D(fake.detach(), y).float()).mean()
    loss_d.backward()
    out = {f"D.{n}": p.grad.clone() for n, p in D.named_parameters() if p.grad is not None}
    D.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss_g = -D(fake, y).float().mean()
    loss_g.backward()
    out.update({f"G.{n}": p.grad.clone() for n, p in G.named_parameters() if p.grad is not None})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--top", type=int, default=8)
    a = ap.parse_args()
    path, state = load_target(a.run)
    cfg = make_config(state["config"])
    meta = state["data"]
    spec = make_spec(cfg.model, tuple(meta["shape"]), meta["num_classes"], meta["kind"], cfg.loss.gp)
    ds = load_dataset(cfg.data)
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, len(ds), (a.batch,), generator=gen)
    real = ds.to_float(idx)
    y = ds.labels[idx] if spec.num_classes else None
    z = torch.randn(a.batch, spec.z_dim, generator=gen)
    ref = gradients(state, spec, cfg.model.arch, real, y, z, bf16=False)
    low = gradients(state, spec, cfg.model.arch, real, y, z, bf16=True)
    rows = sorted(((float((low[k] - ref[k]).norm() / ref[k].norm().clamp_min(1e-30)),
                    float(F.cosine_similarity(low[k].flatten(), ref[k].flatten(), dim=0)), k) for k in ref), reverse=True)
    print(f"{path} (step {state['step']}): bf16 + channels_last against fp32, batch {a.batch}")
    print("| parameter | relative error | cosine |\n|---|---|---|")
    for rel, cos, k in rows[:a.top]:
        print(f"| {k} | {rel:.3f} | {cos:.4f} |")


if __name__ == "__main__":
    main()
