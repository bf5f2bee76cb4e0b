"""gankit's r3gan against the authors' networks (brownvc/R3GAN), side by side on fixed inputs.

    .venv/bin/python benchmarks/parity/r3gan.py --ref PATH/TO/R3GAN [--seeds 5]

PATH is a checkout of https://github.com/brownvc/R3GAN (measured at commit 19a7ddf); its code is
imported from there, on the CPU through its pure-PyTorch reference paths, and never copied here.
The harness builds both at one gankit config (32x32 RGB, widths [128, 128, 64, 32] from 4x4 up,
one block per stage, z 64, ten classes) and reports:

1. start-up statistics over several seeds, each network built by its own code: G's output std
   and the share of it that z explains (the rest is the class), D's logit std on unit images;
2. outputs with identical weights (gankit's weights copied into the reference through the name map
   below, every weight randomised first so that no zero-initialised branch hides a difference;
   the maths is the same, so expect float noise);
3. the losses: R3GAN's `AdversarialTraining` (relativistic loss, R1 and R2 at gamma) against
   gankit's `rpgan` loss and penalties on the same networks and batch.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

from common import importable, print_tables, reference_path, rel

from gankit.config import make_config
from gankit.losses import LOSSES, r1_penalty, r2_penalty
from gankit.models import build_models, make_spec
from gankit.models import r3gan as ours

WIDTHS, BLOCKS, Z, CLASSES, RES = [128, 128, 64, 32], [1, 1, 1, 1], 64, 10, 32


def reference(path: Path):
    importable(path)
    import R3GAN.FusedOperators as fused  # noqa: E402  (the user's checkout)
    import R3GAN.Networks as nets
    import R3GAN.Trainer as trainer
    nets.BiasedActivation = fused.BiasedActivationReference  # the pure-PyTorch paths (the CUDA kernels' references)
    return nets, trainer


def build_ref(nets, conditional: bool):
    card = [w * 2 // ours.GROUP_SIZE for w in WIDTHS]
    cond = dict(ConditionDimension=CLASSES) if conditional else {}
    G = nets.Generator(Z, WIDTHS, card, BLOCKS, 2, ConditionEmbeddingDimension=Z if conditional else 0, **cond)
    D = nets.Discriminator(WIDTHS[::-1], card[::-1], BLOCKS[::-1], 2, ConditionEmbeddingDimension=WIDTHS[0] if conditional else 0, **cond)
    return G.eval(), D.eval()


def build_ours(conditional: bool):
    cfg = make_config({}, ["model.arch=r3gan", f"model.widths={WIDTHS}", f"model.blocks={BLOCKS}", f"model.z_dim={Z}",
                           f"model.conditional={str(conditional).lower()}"])
    G, D = build_models(make_spec(cfg.model, (3, RES, RES), CLASSES if conditional else 0, "image"), "r3gan")
    return G.eval(), D.eval()


def z_share(G, z, y_onehot_or_int, n_z=16):
    """Share of G's output variance explained by z: 1 - E_class[Var within class] / Var, with a
    fixed z set per class (the class term's share is the rest)."""
    with torch.no_grad():
        outs = torch.stack([G(z, y) for y in y_onehot_or_int])  # [classes, n, C, H, W]
    total = outs.var(dim=(0, 1)).mean()
    between_z = outs.mean(0).var(0).mean()  # variance across z of the class-averaged output
    return float(between_z / total)


def start_stats(nets, seeds: int) -> list[tuple[str, float, float]]:
    rows = {k: [] for k in ("G out std (ours)", "G out std (R3GAN)", "z share (ours)", "z share (R3GAN)",
                            "D logit std (ours)", "D logit std (R3GAN)")}
    for s in range(seeds):
        torch.manual_seed(s)
        gG, gD = build_ours(True)
        torch.manual_seed(s)
        rG, rD = build_ref(nets, True)
        g = torch.Generator().manual_seed(100 + s)
        z = torch.randn(64, Z, generator=g)
        x = torch.randn(64, 3, RES, RES, generator=g)
        y = torch.arange(64) % CLASSES
        oh = F.one_hot(y, CLASSES).float()
        with torch.no_grad():
            rows["G out std (ours)"].append(float(gG(z, y).std()))
            rows["G out std (R3GAN)"].append(float(rG(z, oh).std()))
            rows["D logit std (ours)"].append(float(gD(x, y).std()))
            rows["D logit std (R3GAN)"].append(float(rD(x, oh).std()))
        ys = [torch.full((16,), c) for c in range(CLASSES)]
        rows["z share (ours)"].append(z_share(gG, z[:16], ys))
        rows["z share (R3GAN)"].append(z_share(rG, z[:16], [F.one_hot(c, CLASSES).float() for c in ys]))
    return [(k, statistics.median(v), (max(v) - min(v)) / 2) for k, v in rows.items()]


# gankit name -> R3GAN name, or (R3GAN name, transposed)
def name_map(G, D, conditional: bool) -> tuple[dict, dict]:
    gm, dm = {"basis": "MainLayers.0.Layers.0.Basis", "project.weight": "MainLayers.0.Layers.0.LinearLayer.weight",
              "to_image.weight": "AggregationLayer.Layer.weight"}, {"from_image.weight": "ExtractionLayer.Layer.weight"}
    if conditional:
        gm["embed.weight"] = ("EmbeddingLayer.weight", True)
        dm["head.embed.weight"] = ("EmbeddingLayer.weight", True)

    def block(m: dict, ours_prefix: str, ref_prefix: str) -> None:
        for a, b in (("widen.weight", "LinearLayer1.Layer.weight"), ("widen.bias", "NonLinearity1.Bias"),
                     ("mix.weight", "LinearLayer2.Layer.weight"), ("mix.bias", "NonLinearity2.Bias"),
                     ("narrow.weight", "LinearLayer3.Layer.weight")):
            m[f"{ours_prefix}.{a}"] = f"{ref_prefix}.{b}"

    g_state, d_state, n = G.state_dict(), D.state_dict(), len(WIDTHS)
    for s in range(n):  # G stage s: ours [Transition (s > 0), blocks...]; R3GAN [basis or upsampler, blocks...]
        first = 0 if s == 0 else 1
        for i in range(BLOCKS[s]):
            block(gm, f"stages.{s}.{first + i}", f"MainLayers.{s}.Layers.{1 + i}")
        if s and f"stages.{s}.0.conv.weight" in g_state:
            gm[f"stages.{s}.0.conv.weight"] = f"MainLayers.{s}.Layers.0.LinearLayer.Layer.weight"
    for s, b in enumerate(BLOCKS[::-1]):  # D stage s: [blocks..., Transition or basis] in both
        for i in range(b):
            block(dm, f"stages.{s}.{i}", f"MainLayers.{s}.Layers.{i}")
        if f"stages.{s}.{b}.conv.weight" in d_state:
            dm[f"stages.{s}.{b}.conv.weight"] = f"MainLayers.{s}.Layers.{b}.LinearLayer.Layer.weight"
    dm["basis.weight"] = f"MainLayers.{n - 1}.Layers.{BLOCKS[0]}.Basis.weight"
    dm["head.linear.weight"] = f"MainLayers.{n - 1}.Layers.{BLOCKS[0]}.LinearLayer.weight"
    return gm, dm


def copy_into(ours_net, ref_net, mapping: dict) -> None:
    ref_state = ref_net.state_dict()
    ours_state = ours_net.state_dict()
    missing = [k for k in ours_state if k not in mapping and not k.endswith("Kernel")]
    if missing:
        raise SystemExit(f"name map: no reference name for {missing}")
    for k, v in mapping.items():
        name, t = v if isinstance(v, tuple) else (v, False)
        src = ours_state[k].t() if t else ours_state[k]
        if ref_state[name].shape != src.shape:
            raise SystemExit(f"name map: {k} {tuple(src.shape)} -> {name} {tuple(ref_state[name].shape)}")
        ref_state[name] = src.clone()
    unused = [k for k in ref_state if k not in {(v[0] if isinstance(v, tuple) else v) for v in mapping.values()}
              and not k.endswith("Kernel")]
    if unused:
        raise SystemExit(f"name map: reference weights left unset: {unused}")
    ref_net.load_state_dict(ref_state)


def randomise(net, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 + p * 0.5)


def same_weights(nets, trainer, conditional: bool) -> list[tuple[str, float]]:
    torch.manual_seed(0)
    gG, gD = build_ours(conditional)
    rG, rD = build_ref(nets, conditional)
    randomise(gG, 1)
    randomise(gD, 2)
    gm, dm = name_map(gG, gD, conditional)
    copy_into(gG, rG, gm)
    copy_into(gD, rD, dm)
    g = torch.Generator().manual_seed(3)
    z, x = torch.randn(8, Z, generator=g), torch.randn(8, 3, RES, RES, generator=g)
    y = torch.arange(8) % CLASSES if conditional else None
    oh = F.one_hot(y, CLASSES).float() if conditional else None
    tag = "conditional" if conditional else "unconditional"
    out = []
    with torch.no_grad():
        ref_img, ref_logit = rG(z, oh), rD(x, oh)
        out.append((f"G output, {tag}", rel(gG(z, y), ref_img)))
        out.append((f"D logits, {tag}", rel(gD(x, y), ref_logit)))
    # losses and penalties on the same networks and batch (gamma as R3GAN: D loss + gamma/2 (R1 + R2))
    gamma = 0.1
    real = x
    adv = trainer.AdversarialTraining(rG, rD)
    rD.zero_grad()
    a_loss, _, r1, r2 = adv.AccumulateDiscriminatorGradients(z, real, oh, gamma)
    ref_total = float((a_loss + gamma / 2 * (r1 + r2)).mean())
    loss = LOSSES.get("rpgan")
    fake = gG(z, y).detach()
    ours_total = (loss.d(gD(real, y), gD(fake, y)) + gamma * (r1_penalty(gD, real, y) + r2_penalty(gD, fake, y))).item()
    out.append((f"D loss + R1 + R2 (gamma {gamma}), {tag}", abs(ours_total - ref_total) / abs(ref_total)))
    return out


def main() -> None:
    a = reference_path(__doc__.splitlines()[0], "brownvc/R3GAN", "R3GAN/Networks.py")
    nets, trainer = reference(a.ref)
    same = [row for cond in (False, True) for row in same_weights(nets, trainer, cond)]
    print_tables(f"R3GAN parity: gankit r3gan against {a.ref} (32x32 RGB, widths {WIDTHS}, blocks {BLOCKS}, z {Z}, {CLASSES} classes)",
                 a.seeds, start_stats(nets, a.seeds), same)


if __name__ == "__main__":
    main()
