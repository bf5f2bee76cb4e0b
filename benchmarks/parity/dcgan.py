"""gankit's dcgan against the DCGAN of pytorch/examples (`dcgan/main.py`, Radford et al.'s 64x64 networks).

    .venv/bin/python benchmarks/parity/dcgan.py --ref PATH/TO/pytorch-examples [--seeds 5]

PATH is a checkout of https://github.com/pytorch/examples (measured at 77f55b9). Its `dcgan/main.py` is
a script that trains on import, so the harness reads the file, takes out its `weights_init`, `Generator`
and `Discriminator` with `ast` and runs only those definitions, with the script's sizes (z 100, 64
channels in G and D, RGB); nothing of it is copied here. gankit's networks are built at the same sizes:
64x64, `model.width=64`, `model.z_dim=100`, unconditional, and `model.sn_d=false`, which gives the
original DCGAN D with batch norm. Reported:

1. start-up statistics over several seeds, each network built and initialised by its own code: G's
   output std (in training mode, batch statistics), D's logit std on N(0, 1) images (the reference's
   logit: its last conv, before the sigmoid that gankit's losses fold into the loss);
2. identical weights (gankit's copied into the reference through the name map below, batch norm's
   affine parameters and running statistics randomised first): G's output and D's logits, in training
   mode (batch statistics) and in eval mode (running statistics).

The layers line up one to one. gankit's G starts with a linear layer on z where the reference has a
4x4 transposed convolution of a 1x1 input (the same map), and its D ends in a linear layer on the 4x4
features where the reference has a 4x4 valid convolution (the same map). gankit has four bias vectors
the reference lacks (G's linear layer and output conv, D's first conv and head), zero at the start: the
same function at step 0, and a few hundred extra parameters that learn (the harness checks they start at
zero). The other start-up difference: the reference draws batch norm's scales from N(1, 0.02), gankit
starts them at 1.
"""
from __future__ import annotations

import ast
import statistics
from pathlib import Path

import torch
from torch import nn

from common import print_tables, reference_path, rel

from gankit.config import make_config
from gankit.models import build_models, make_spec

RES, WIDTH, Z = 64, 64, 100


def reference(path: Path) -> dict:
    """The definitions of pytorch/examples' dcgan/main.py (weights_init, Generator, Discriminator)."""
    src = (path / "dcgan" / "main.py").read_text()
    keep = [n for n in ast.parse(src).body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in ("weights_init", "Generator", "Discriminator")]
    if len(keep) != 3:
        raise SystemExit(f"--ref {path}: dcgan/main.py does not define weights_init, Generator and Discriminator")
    scope = {"torch": torch, "nn": nn, "nz": Z, "ngf": WIDTH, "ndf": WIDTH, "nc": 3}
    exec(compile(ast.Module(keep, []), str(path / "dcgan" / "main.py"), "exec"), scope)
    return scope


def build_ref(scope: dict) -> tuple[nn.Module, nn.Module]:
    G, D = scope["Generator"](0), scope["Discriminator"](0)
    G.apply(scope["weights_init"])
    D.apply(scope["weights_init"])
    return G, D


def build_ours() -> tuple[nn.Module, nn.Module]:
    cfg = make_config({}, ["model.arch=dcgan", f"model.width={WIDTH}", f"model.z_dim={Z}", "model.sn_d=false",
                           f"data.resolution={RES}"])
    return build_models(make_spec(cfg.model, (3, RES, RES), 0, "image"), "dcgan")


def ref_g(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    return G(z[:, :, None, None])


def ref_d(D: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return D.main[:-1](x).flatten()  # the logit: the sigmoid left off


def extra_biases(G: nn.Module, D: nn.Module) -> list[torch.Tensor]:
    """The biases gankit has and the reference does not."""
    first = next(m for m in D.body if isinstance(m, nn.Conv2d))
    return [G.fc.bias, G.out.bias, first.bias, D.head.linear.bias]


def copy_weights(ours_g: nn.Module, ours_d: nn.Module, ref_gn: nn.Module, ref_dn: nn.Module) -> None:
    """gankit's weights into the reference. G: fc -> main.0 (a 4x4 transposed conv of a 1x1 input), bn0 ->
    main.1, ups.i -> main.3(i+1), bns.i -> main.3(i+1)+1, out -> main.12. D: body's convs and batch norms
    in order -> main's, head.linear -> main.11 (a 4x4 valid conv)."""
    g, d = ref_gn.main, ref_dn.main
    C = g[0].weight.shape[1]
    with torch.no_grad():
        # fc.weight [C*16, z] with rows (c, h, w)  <->  ConvTranspose2d weight [z, C, 4, 4]
        g[0].weight.copy_(ours_g.fc.weight.T.reshape(Z, C, 4, 4))
        bns = [ours_g.bn0.bn, *(b.bn for b in ours_g.bns)]
        convs = [None, *ours_g.ups, ours_g.out]
        for i, bn in enumerate(bns):
            if i:
                g[3 * i].weight.copy_(convs[i].weight)
            g[3 * i + 1].load_state_dict(bn.state_dict())
        g[12].weight.copy_(ours_g.out.weight)
        ours_convs = [m for m in ours_d.body if isinstance(m, nn.Conv2d)]
        ours_bns = [m for m in ours_d.body if isinstance(m, nn.BatchNorm2d)]
        ref_convs = [m for m in d if isinstance(m, nn.Conv2d)]
        ref_bns = [m for m in d if isinstance(m, nn.BatchNorm2d)]
        for a, b in zip(ours_convs, ref_convs):
            b.weight.copy_(a.weight)
        for a, b in zip(ours_bns, ref_bns):
            b.load_state_dict(a.state_dict())
        ref_convs[-1].weight.copy_(ours_d.head.linear.weight.reshape(1, -1, 4, 4))


def main() -> None:
    a = reference_path(__doc__.splitlines()[0], "pytorch/examples", "dcgan/main.py")
    scope = reference(a.ref)
    stats: dict[str, list[float]] = {}
    for seed in range(a.seeds):
        z = torch.randn(64, Z, generator=torch.Generator().manual_seed(100 + seed))
        x = torch.randn(64, 3, RES, RES, generator=torch.Generator().manual_seed(200 + seed))
        for who, build, g_of, d_of in (("gankit", build_ours, lambda G, z: G(z), lambda D, x: D(x)),
                                       ("pytorch/examples", lambda: build_ref(scope), ref_g, ref_d)):
            torch.manual_seed(seed)
            G, D = build()
            with torch.no_grad():
                stats.setdefault(f"G output std, {who}", []).append(float(g_of(G.train(), z).std()))
                stats.setdefault(f"D logit std, {who}", []).append(float(d_of(D.train(), x).std()))
    rows = [(k, statistics.median(v), (max(v) - min(v)) / 2) for k, v in stats.items()]

    torch.manual_seed(0)
    G, D = build_ours()
    start = max(float(b.detach().abs().max()) for b in extra_biases(G, D))
    if start != 0:
        raise SystemExit(f"gankit's extra biases start at up to {start:.2e}, not zero: the networks differ at step 0")
    # batch norm's running statistics and affine parameters randomised, so that both modes compare them
    with torch.no_grad():
        for m in [*G.modules(), *D.modules()]:
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                if m.affine:
                    m.weight.normal_(1, 0.1)
                    m.bias.normal_(0, 0.1)
    rG, rD = build_ref(scope)
    copy_weights(G, D, rG, rD)
    same = []
    z = torch.randn(16, Z, generator=torch.Generator().manual_seed(1))
    x = torch.randn(16, 3, RES, RES, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for mode in ("train", "eval"):
            for m in (G, D, rG, rD):
                m.train(mode == "train")
            same.append((f"G output, {mode} mode", rel(G(z), ref_g(rG, z))))
            same.append((f"D logits, {mode} mode", rel(D(x), ref_d(rD, x))))
    print_tables("DCGAN: gankit's dcgan against pytorch/examples' dcgan/main.py (64x64, width 64, z 100, BN in D)",
                 a.seeds, rows, same)


if __name__ == "__main__":
    main()
