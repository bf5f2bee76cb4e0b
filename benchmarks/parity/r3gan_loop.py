"""gankit's r3gan networks against the authors' networks, each trained by gankit's loop on one small problem.

    .venv/bin/python benchmarks/parity/r3gan_loop.py --ref PATH/TO/R3GAN [--seeds 2] [--steps 300]

The authors' `R3GAN/Networks.py` (read from PATH, a checkout of brownvc/R3GAN, through its
pure-PyTorch paths) is registered as the architecture `r3gan_authors` for this run only, so both
train under the same config: mnist5k 32x32 as RGB, class-conditional, widths [128, 128, 64, 32],
one block per stage, z 64, the relativistic loss with R1 = R2 = 0.1, Adam (0, 0.99) at 2e-4,
batch 32, fp32. The measure is the one that showed the collapse: the share of the samples'
variance that lies within a class (100 samples of each class from G; real digits: about 0.77;
a G that draws one image per class: 0). Printed per seed, with the median.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from r3gan import WIDTHS, reference  # noqa: E402  (this folder's harness)

from gankit.config import make_config  # noqa: E402
from gankit.data import load_dataset  # noqa: E402
from gankit.errors import ConfigError  # noqa: E402
from gankit.training.loop import train  # noqa: E402
from gankit.models import register_arch  # noqa: E402


def within_class_share(x: torch.Tensor, y: torch.Tensor) -> float:
    x = x.flatten(1).double()
    within = statistics.mean(float(x[y == c].var(0).mean()) for c in y.unique())
    return within / float(x.var(0).mean())


def register_authors(nets) -> None:
    card = [w * 2 // 16 for w in WIDTHS]

    def fixed(spec):  # a config may name the widths (a recipe's file), but only these are built
        if spec.widths not in ((), tuple(WIDTHS)) or spec.blocks not in ((), (1,), (1,) * 4) or spec.shape[0] != 3:
            raise ConfigError(f"model.arch: r3gan_authors is built at widths {WIDTHS}, one block per stage, RGB: set data.channels=3")

    class G(nn.Module):
        def __init__(self, spec):
            super().__init__()
            fixed(spec)
            self.z_dim, self.num_classes = spec.z_dim, spec.num_classes
            self.net = nets.Generator(spec.z_dim, WIDTHS, card, [1] * 4, 2, ConditionDimension=spec.num_classes,
                                      ConditionEmbeddingDimension=spec.z_dim)

        def forward(self, z, y=None):
            onehot = y.to(z.dtype) if y.is_floating_point() else F.one_hot(y, self.num_classes).to(z.dtype)
            return self.net(z, onehot)

    class D(nn.Module):
        def __init__(self, spec, out_dim: int = 1):
            super().__init__()
            self.num_classes = spec.num_classes
            self.net = nets.Discriminator(WIDTHS[::-1], card[::-1], [1] * 4, 2, ConditionDimension=spec.num_classes,
                                          ConditionEmbeddingDimension=WIDTHS[0])

        def forward(self, x, y=None):
            onehot = y.to(x.dtype) if y.is_floating_point() else F.one_hot(y, self.num_classes).to(x.dtype)
            return self.net(x, onehot)

    register_arch("r3gan_authors", "image", (32,), options=("widths", "blocks"))((G, D))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", type=Path, required=True, help="a checkout of brownvc/R3GAN")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    nets, _ = reference(a.ref)
    register_authors(nets)
    base = {"data.source": "mnist5k", "data.resolution": 32, "data.channels": 3, "model.conditional": True, "model.z_dim": 64,
            "loss.name": "rpgan", "loss.r1": 0.1, "loss.r2": 0.1, "train.batch_size": 32, "train.steps": a.steps,
            "train.betas_g": "[0.0,0.99]", "train.betas_d": "[0.0,0.99]", "train.threads": a.threads,
            "train.log_every": 50, "train.sample_every": 10**6, "train.checkpoint_every": 10**6}
    ds = load_dataset(make_config({}, [f"{k}={v}" for k, v in base.items()]).data)
    print(f"real mnist5k: within-class share {within_class_share(ds.x.float(), ds.labels):.3f}")
    print(f"\n| networks (gankit's loop, {a.steps} steps at batch 32) | seed | within-class share | D pair accuracy at the end |\n|---|---|---|---|")
    results: dict[str, list[float]] = {}
    for seed in range(a.seeds):
        for arch, extra in (("r3gan", {"model.widths": str(WIDTHS), "model.blocks": "[1]"}), ("r3gan_authors", {})):
            over = {**base, **extra, "model.arch": arch, "train.seed": seed}
            with tempfile.TemporaryDirectory() as out:
                p = train(make_config({}, [f"{k}={v}" for k, v in over.items()]), Path(out), quiet=True)
                lines = (Path(out) / "metrics.jsonl").read_text().splitlines()
            G = p.G.eval()
            y = torch.arange(10).repeat_interleave(100)
            with torch.no_grad():
                x = G(torch.randn(1000, 64, generator=torch.Generator().manual_seed(seed)), y).clamp(-1, 1)
            share = within_class_share(x, y)
            import json
            acc = json.loads(lines[-1]).get("d_acc", float("nan"))
            results.setdefault(arch, []).append(share)
            print(f"| {'gankit' if arch == 'r3gan' else 'the authors'} | {seed} | {share:.3f} | {acc:.2f} |", flush=True)
    for arch, v in results.items():
        print(f"\nmedian within-class share, {'gankit' if arch == 'r3gan' else 'the authors'}: {statistics.median(v):.3f}")


if __name__ == "__main__":
    main()
