"""gankit's SNGAN ResNet against StudioGAN's (POSTECH-CVLab/PyTorch-StudioGAN, `src/models/resnet.py`).

    .venv/bin/python benchmarks/parity/resnet.py --ref PATH/TO/PyTorch-StudioGAN [--seeds 5]

PATH is a checkout of https://github.com/POSTECH-CVLab/PyTorch-StudioGAN (measured at 947b35e); its
networks are imported from there, never copied here, with its SNGAN CIFAR-10 settings (`configs/CIFAR10/
SNGAN.yaml`: conditional batch norm in G, a projection head in D, spectral norm in D only, ReLU,
orthogonal initialisation). Both are built at one gankit config (32x32 RGB, width 32: G 128 channels,
D 64; z 128; unconditional and ten classes) and the harness reports:

1. start-up statistics over several seeds, each network built by its own code: G's output std (in
   training mode: batch statistics, as G runs in a training step), D's logit std on unit images;
2. identical weights (gankit's copied into the reference through the name map below, spectral-norm
   vectors included; the class embedding gankit adds to G's input is not in StudioGAN's G, so G is
   compared unconditionally, and D with the projection head both ways).
"""
from __future__ import annotations

import statistics
import sys
import types
from pathlib import Path

import torch
from torch import nn

from common import print_tables, reference_path, rel

from gankit.config import make_config
from gankit.models import build_models, make_spec

RES, WIDTH, Z, CLASSES = 32, 32, 128, 10


def reference(path: Path):
    sys.path.insert(0, str(path / "src"))
    # utils.misc pulls in torchvision, scipy, seaborn...; the networks use only its no-op context manager
    misc = types.ModuleType("utils.misc")
    misc.dummy_context_mgr = _nothing
    sys.modules["utils.misc"] = misc
    import utils.ops as ops  # noqa: E402  (the user's checkout)
    from models import resnet  # noqa: E402
    return ops, resnet


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def build_ref(ops, resnet, conditional: bool):
    modules = types.SimpleNamespace(
        g_conv2d=ops.conv2d, g_deconv2d=ops.deconv2d, g_linear=ops.linear,
        g_bn=ops.ConditionalBatchNorm2d if conditional else ops.batchnorm_2d, g_act_fn=nn.ReLU(inplace=False),
        d_conv2d=ops.snconv2d, d_deconv2d=ops.sndeconv2d, d_linear=ops.snlinear, d_embedding=ops.sn_embedding,
        d_bn=ops.batchnorm_2d, d_act_fn=nn.ReLU(inplace=False))
    model = types.SimpleNamespace(info_type="N/A", g_info_injection="N/A")
    G = resnet.Generator(Z, "N/A", RES, WIDTH, False, [], "cBN" if conditional else "W/O", CLASSES, "ortho", "N/A", False,
                         modules, model)
    D = resnet.Discriminator(RES, WIDTH, True, False, [], "PD" if conditional else "W/O", "W/O", "N/A", False, CLASSES,
                             "ortho", "N/A", False, modules, model)
    return G, D


def as_authors(net: nn.Module) -> nn.Module:
    """The reference re-initialised as the SNGAN authors' code does (pfnet-research/sngan_projection:
    Glorot-uniform, gain sqrt(2) for the residual branches' conv2d1/conv2d2, zero biases; StudioGAN
    uses orthogonal weights), spectral-norm vectors kept (converge_sn estimates them again)."""
    with torch.no_grad():
        for name, m in net.named_modules():
            if name.endswith((".gain", ".bias")):  # conditional batch norm's class maps: gains 1, shifts 0 as the authors'
                m.weight.zero_()
            elif isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
                w = m.weight_orig if hasattr(m, "weight_orig") else m.weight
                nn.init.xavier_uniform_(w, gain=2 ** 0.5 if name.endswith(("conv2d1", "conv2d2")) else 1.0)
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
    return net


def build_ours(conditional: bool):
    cfg = make_config({}, ["model.arch=resnet", f"model.width={WIDTH}", f"model.z_dim={Z}",
                           f"model.conditional={str(conditional).lower()}"])
    return build_models(make_spec(cfg.model, (3, RES, RES), CLASSES if conditional else 0, "image"), "resnet")


def start_stats(ops, resnet, seeds: int) -> list[tuple[str, float, float]]:
    rows: dict[str, list[float]] = {}
    for s in range(seeds):
        for cond in (False, True):
            tag = "conditional" if cond else "unconditional"
            torch.manual_seed(s)
            gG, gD = build_ours(cond)
            torch.manual_seed(s)
            rG, rD = build_ref(ops, resnet, cond)
            torch.manual_seed(s)
            aG, aD = (as_authors(n) for n in build_ref(ops, resnet, cond))
            g = torch.Generator().manual_seed(100 + s)
            z = torch.randn(64, Z, generator=g)
            x = torch.randn(64, 3, RES, RES, generator=g)
            y = torch.arange(64) % CLASSES
            with torch.no_grad():
                converge_sn(rD, x[:2], y[:2])
                converge_sn(aD, x[:2], y[:2])
                for who, G, D in (("gankit", gG, gD), ("StudioGAN", rG, rD), ("StudioGAN, the authors' init", aG, aD)):
                    G.train()
                    D.eval()  # no power iteration: the logits of the weights as built
                    out = G(z, y) if who == "gankit" else G(z, y, eval=True)
                    logit = D(x, y) if who == "gankit" else D(x, y, eval=True)["adv_output"]
                    rows.setdefault(f"G output std, {tag} ({who})", []).append(float(out.std()))
                    rows.setdefault(f"G pre-tanh std, {tag} ({who})", []).append(float(torch.atanh(out.clamp(-0.999999, 0.999999)).std()))
                    rows.setdefault(f"D logit std on unit images, {tag} ({who})", []).append(float(logit.std()))
    return [(k, statistics.median(v), (max(v) - min(v)) / 2) for k, v in sorted(rows.items())]


def converge_sn(rD, x, y) -> None:
    """15 power iterations for the reference's spectral norm (torch.nn.utils.spectral_norm draws its vectors
    at random and iterates once per training forward; gankit's parametrisation iterates 15 times when it
    wraps a layer): the start-up logits then belong to the weights as built, not to random vectors."""
    rD.train()
    for _ in range(15):
        rD(x, y, eval=True)
    rD.eval()


def d_name_map(D, conditional: bool) -> dict[str, str]:
    """gankit D -> StudioGAN D: blocks i -> blocks.i.0; conv1/conv2/skip -> conv2d1/conv2d2/conv2d0; head."""
    out: dict[str, str] = {}
    for k in D.state_dict():
        parts = k.split(".")
        if parts[0] == "blocks":
            layer = {"conv1": "conv2d1", "conv2": "conv2d2", "skip": "conv2d0"}[parts[2]]
            ref = f"blocks.{parts[1]}.0.{layer}"
        else:
            ref = {"linear": "linear1", "embed": "embedding"}[parts[1]]
        rest = ".".join(parts[3:] if parts[0] == "blocks" else parts[2:])
        if rest == "bias":
            out[k] = f"{ref}.bias"
        elif rest.startswith("parametrizations.weight.original"):
            out[k] = f"{ref}.weight_orig"
        elif rest == "parametrizations.weight.0._u":
            out[k] = f"{ref}.weight_u"
        elif rest == "parametrizations.weight.0._v":
            out[k] = f"{ref}.weight_v"
        else:
            raise SystemExit(f"name map: no reference name for {k}")
    return out


def g_name_map(G) -> dict[str, str]:
    """gankit G (unconditional) -> StudioGAN G: fc -> linear0, blocks.i.{bn1,conv1,bn2,conv2,skip} ->
    blocks.i.0.{bn1,conv2d1,bn2,conv2d2,conv2d0}, bn -> bn4, out -> conv2d5."""
    out: dict[str, str] = {}
    for k in G.state_dict():
        parts = k.split(".")
        if parts[0] == "blocks":
            layer = {"bn1": "bn1", "conv1": "conv2d1", "bn2": "bn2", "conv2": "conv2d2", "skip": "conv2d0"}[parts[2]]
            rest = parts[3:]
            if rest and rest[0] == "bn":  # CondBatchNorm2d's inner batch norm (no classes: affine)
                rest = rest[1:]
            out[k] = ".".join([f"blocks.{parts[1]}.0.{layer}", *rest])
        else:
            out[k] = ".".join([{"fc": "linear0", "bn": "bn4", "out": "conv2d5"}[parts[0]], *parts[1:]])
    return out


def copy_into(ours, ref, mapping: dict[str, str]) -> None:
    src, dst = ours.state_dict(), ref.state_dict()
    for k, name in mapping.items():
        if name not in dst or dst[name].shape != src[k].shape:
            raise SystemExit(f"name map: {k} {tuple(src[k].shape)} -> {name} "
                             f"{tuple(dst[name].shape) if name in dst else 'missing'}")
        dst[name] = src[k].clone()
    unset = [k for k in dst if k not in set(mapping.values()) and not k.endswith("num_batches_tracked")]
    if unset:
        raise SystemExit(f"name map: reference weights left unset: {unset}")
    ref.load_state_dict(dst)


def randomise(net: nn.Module) -> None:
    """Every parameter and buffer random (batch-norm variances positive): no zero bias or unit gain hides a difference."""
    with torch.no_grad():
        for name, p in [*net.named_parameters(), *net.named_buffers()]:
            if p.is_floating_point():
                p.copy_(torch.rand_like(p) + 0.5 if "running_var" in name else torch.randn_like(p) * (p.std().clamp_min(0.1) if p.numel() > 1 else 1.0))


def same_weights(ops, resnet) -> list[tuple[str, float]]:
    rows = []
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)
    z, x = torch.randn(16, Z, generator=g), torch.randn(16, 3, RES, RES, generator=g)
    y = torch.arange(16) % CLASSES
    gG, _ = build_ours(False)
    rG, _ = build_ref(ops, resnet, False)
    randomise(gG)
    start = {k: v.clone() for k, v in gG.state_dict().items()}
    for eps in ("as built (batch-norm eps: gankit 1e-5, StudioGAN 1e-4)", "StudioGAN's batch-norm eps set to gankit's"):
        gG.load_state_dict(start)  # running statistics as randomised (a training-mode pass updates them)
        copy_into(gG, rG, g_name_map(gG))
        if eps.startswith("StudioGAN's"):
            for m in rG.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eps = 1e-5
        for mode in ("train", "eval"):
            gG.train(mode == "train")
            rG.train(mode == "train")
            with torch.no_grad():
                a, b = gG(z), rG(z, y, eval=True)
            rows.append((f"G output, unconditional, {mode} mode, {eps}", rel(a, b)))
    for cond in (False, True):
        _, gD = build_ours(cond)
        _, rD = build_ref(ops, resnet, cond)
        randomise(gD)
        if len(gD.blocks) != len(rD.blocks):
            rows.append((f"D, {'conditional' if cond else 'unconditional'}: blocks (gankit / StudioGAN)",
                         float(len(gD.blocks)) / len(rD.blocks)))
            continue
        copy_into(gD, rD, d_name_map(gD, cond))
        gD.eval()
        rD.eval()
        with torch.no_grad():
            a, b = gD(x, y), rD(x, y, eval=True)["adv_output"]
        rows.append((f"D logits, {'conditional' if cond else 'unconditional'}", rel(a, b)))
    return rows


def main() -> None:
    a = reference_path(__doc__.splitlines()[0], "POSTECH-CVLab/PyTorch-StudioGAN", "src/models/resnet.py")
    ops, resnet = reference(a.ref)
    print_tables("SNGAN ResNet: gankit against StudioGAN", a.seeds, start_stats(ops, resnet, a.seeds), same_weights(ops, resnet))


if __name__ == "__main__":
    main()
