"""gankit's pix2pix networks against the authors' (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py).

    .venv/bin/python benchmarks/parity/pix2pix.py --ref PATH

PATH holds the authors' `models/networks.py` (UnetGenerator, NLayerDiscriminator; a checkout of the
repository, or a folder with that file). For several sizes (halvings, width, channels) both are built
with batch norm (pix2pix's default), gankit's weights are copied into theirs level by level, and:
- the parameter counts and the layers that carry dropout must be the same;
- at batch size 1 in training mode (pix2pix trains at batch 1, where its batch norm normalises each
  image by itself, which gankit's `InstanceNorm` does at any batch size), dropout off, G's and D's
  outputs must agree to float rounding.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import reference_path, rel  # noqa: E402

from gankit.config import make_config  # noqa: E402
from gankit.models import build_models, make_spec  # noqa: E402
from gankit.models.layers import SeededDropout  # noqa: E402
from gankit.models.unet import InstanceNorm  # noqa: E402


def their_levels(G: nn.Module) -> list[dict[str, nn.Module]]:
    """The authors' U-Net blocks from outermost in: down conv and norm, up conv and norm, dropout."""
    levels, block = [], G.model
    while block is not None:
        parts = list(block.model)
        convs = [m for m in parts if isinstance(m, nn.Conv2d)]
        ups = [m for m in parts if isinstance(m, nn.ConvTranspose2d)]
        norms = [m for m in parts if isinstance(m, nn.BatchNorm2d)]
        subs = [m for m in parts if m.__class__.__name__ == "UnetSkipConnectionBlock"]
        inner = not subs
        down_norm = norms[0] if len(norms) == 2 else None
        up_norm = norms[-1] if (len(norms) == 2 or (inner and norms)) else None
        levels.append({"down": convs[0], "down_norm": down_norm, "up": ups[0], "up_norm": up_norm,
                       "dropout": any(isinstance(m, nn.Dropout) for m in parts)})
        block = subs[0] if subs else None
    return levels


def copy_norm(src: InstanceNorm, dst: nn.BatchNorm2d) -> None:
    dst.weight.data.copy_(src.weight.data)
    dst.bias.data.copy_(src.bias.data)


def main() -> None:
    a = reference_path(__doc__.splitlines()[0], "junyanz/pytorch-CycleGAN-and-pix2pix", "models/networks.py")
    sys.path.insert(0, str(a.ref / "models"))
    import networks as ref

    print("| halvings | width | in -> out | parameters G (gankit / theirs) | D | dropout blocks | G max rel. diff | D max rel. diff |")
    print("|---|---|---|---|---|---|---|---|")
    for depth, width, c_in, c_out, side in ((5, 32, 1, 3, 32), (6, 16, 3, 3, 64), (8, 8, 3, 3, 256)):
        cfg = make_config({}, ["model.family=pix2pix", "model.arch=unet", f"model.depth={depth}", f"model.width={width}", "model.sn_d=false",
                               "data.pairs=grey"])
        spec = make_spec(cfg.model, (c_out, side, side), 0, "pairs", in_channels=c_in)
        torch.manual_seed(0)
        G, D = build_models(spec, "unet")
        for m in G.modules():  # trained-like gains and shifts, so that no zero hides a mismatch
            if isinstance(m, InstanceNorm):
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.3, 0.3)
            if isinstance(m, nn.ConvTranspose2d) and m.bias is not None:
                m.bias.data.uniform_(-0.1, 0.1)
        tG = ref.UnetGenerator(c_in, c_out, depth, width, norm_layer=nn.BatchNorm2d, use_dropout=True)
        tD = ref.NLayerDiscriminator(c_in + c_out, width, n_layers=3, norm_layer=nn.BatchNorm2d)
        levels = their_levels(tG)
        assert len(levels) == depth, (len(levels), depth)
        for i, lv in enumerate(levels):
            mine_down = [m for m in G.down[i] if isinstance(m, nn.Conv2d)][0]
            mine_up = [m for m in G.up[i] if isinstance(m, nn.ConvTranspose2d)][0]
            lv["down"].weight.data.copy_(mine_down.weight.data)
            lv["up"].weight.data.copy_(mine_up.weight.data)
            if lv["up"].bias is not None:
                lv["up"].bias.data.copy_(mine_up.bias.data)
            norms_down = [m for m in G.down[i] if isinstance(m, InstanceNorm)]
            norms_up = [m for m in G.up[i] if isinstance(m, InstanceNorm)]
            assert bool(norms_down) == (lv["down_norm"] is not None) and bool(norms_up) == (lv["up_norm"] is not None), i
            if norms_down:
                copy_norm(norms_down[0], lv["down_norm"])
            if norms_up:
                copy_norm(norms_up[0], lv["up_norm"])
        mine_drop = sum(any(isinstance(m, SeededDropout) for m in up) for up in G.up)
        theirs_drop = sum(lv["dropout"] for lv in levels)
        mine_d = [m for m in D.net if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
        theirs_d = [m for m in tD.model if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
        for s, t in zip(mine_d, theirs_d, strict=True):
            t.load_state_dict(s.state_dict())
        count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
        x = torch.randn(1, c_in, side, side, generator=torch.Generator().manual_seed(1))
        y = torch.randn(1, c_out, side, side, generator=torch.Generator().manual_seed(2)).clamp(-1, 1)
        G.train(), tG.train(), D.train(), tD.train()
        for m in [*G.modules(), *tG.modules()]:
            if isinstance(m, (nn.Dropout, SeededDropout)):
                m.eval()
        with torch.no_grad():
            dg = rel(G(x), tG(x))
            dd = rel(D(torch.cat([x, y], 1)), tD(torch.cat([x, y], 1)))
        print(f"| {depth} | {width} | {c_in} -> {c_out} | {count(G):,} / {count(tG):,} | {count(D):,} / {count(tD):,} | "
              f"{mine_drop} / {theirs_drop} | {dg:.1e} | {dd:.1e} |")


if __name__ == "__main__":
    main()
