"""Your own generator, discriminator and loss, registered in a few lines and trained by gankit's loop.

    python examples/custom_model.py
"""
import torch
import torch.nn.functional as F
from _size import small, steps
from torch import nn

import gankit


class TinyG(nn.Module):
    """z -> a 2-layer MLP -> an image in [-1, 1]."""

    def __init__(self, spec):
        super().__init__()
        self.shape = spec.shape
        self.net = nn.Sequential(nn.Linear(spec.z_dim, spec.width * 4), nn.ReLU(), nn.Linear(spec.width * 4, int(torch.tensor(spec.shape).prod())))

    def forward(self, z, y=None):
        return torch.tanh(self.net(z)).view(len(z), *self.shape)


class TinyD(nn.Module):
    """An image -> one logit (spectral norm keeps it smooth)."""

    def __init__(self, spec, out_dim=1):
        super().__init__()
        n = int(torch.tensor(spec.shape).prod()) * spec.pac
        sn = nn.utils.parametrizations.spectral_norm
        self.net = nn.Sequential(sn(nn.Linear(n, spec.width * 4)), nn.LeakyReLU(0.2), sn(nn.Linear(spec.width * 4, out_dim)))

    def forward(self, x, y=None):
        return self.net(x.flatten(1)).squeeze(1)


gankit.register_arch("tiny_mlp", "image")((TinyG, TinyD))
# least squares with a margin, written out: D pushes real logits to 1 and generated ones to -1
gankit.register_loss("ls_margin", d=lambda r, f: F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, -torch.ones_like(f)),
                     g=lambda f: F.mse_loss(f, torch.ones_like(f)))

run = gankit.train({}, out="runs/example_custom", data={"source": "digits", "resolution": 16},
                   model={"arch": "tiny_mlp", "width": small(32, 8), "z_dim": 32}, loss={"name": "ls_margin"},
                   train={"steps": steps(2000), "batch_size": 64, "sample_every": steps(500), "checkpoint_every": steps(1000)})
run.generator().grid(64, seed=0).save("runs/example_custom/grid.png")
print(f"{run.step} steps of tiny_mlp with ls_margin; samples in runs/example_custom/grid.png")
