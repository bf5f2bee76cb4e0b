"""gankit's fastgan against the authors' networks (odegeasslbc/FastGAN-pytorch, `models.py`), side by side.

    .venv/bin/python benchmarks/parity/fastgan.py --ref PATH [--seeds 5]

PATH is a checkout of https://github.com/odegeasslbc/FastGAN-pytorch (measured with the authors' first
upload, e2cc786 of 2021-01-12, as carried by the fork hugobb/FastGAN-pytorch); `models.py` is imported from
there, never copied here. Both are built at 256x256 RGB (the smallest size the authors' code builds), base
width 16 (their ngf/ndf; 64 in their runs, narrower here for the CPU), z 256 (their nz), and the harness
reports:

1. start-up statistics over several seeds, each network built by its own code: G's output std before
   its last nonlinearity (the authors' G at 256 px has none: `to_big` is returned raw; gankit's applies
   tanh), with gankit's default (no spectral norm in G) and with `model.sn_g=true` (the authors' G is
   spectrally normalised throughout); D's per-patch logit std on unit images;
2. identical weights: gankit's G (`model.sn_g=true`, `to_image`'s bias zeroed: the authors' has none)
   copied into the authors' through the name map below, noise strengths zero (the authors' noise is
   always random); one of D's down blocks, where the maths is the same;
3. what differs by design and is not compared: the authors' D has a second branch judging a 128 px copy
   (G's auxiliary 128 px output for fakes), skip-layer excitation inside D, and a decoder for that small
   branch; gankit's D has one branch and no SLE; the authors' reconstruction loss is LPIPS (gankit: MSE).
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch
from torch import nn

from common import print_tables, reference_path, rel

from gankit.config import make_config
from gankit.models import build_models, make_spec

RES, WIDTH, Z = 256, 16, 256


def reference(path: Path):
    sys.path.insert(0, str(path))
    import models  # noqa: E402  (the user's checkout)
    return models


def build_ref(models):
    G, D = models.Generator(ngf=WIDTH, nz=Z, im_size=RES), models.Discriminator(ndf=WIDTH, im_size=RES)
    G.apply(models.weights_init), D.apply(models.weights_init)  # as their train.py does
    return G, D


def build_ours(sn_g: bool):
    cfg = make_config({}, ["model.arch=fastgan", f"model.width={WIDTH}", f"model.z_dim={Z}", f"model.sn_g={str(sn_g).lower()}"])
    return build_models(make_spec(cfg.model, (3, RES, RES), 0, "image"), "fastgan")


def pre_output(G, z: torch.Tensor) -> torch.Tensor:
    """gankit G's `to_image` output (before tanh)."""
    seen = []
    hook = G.to_image.register_forward_hook(lambda m, i, o: seen.append(o))
    try:
        G(z)
    finally:
        hook.remove()
    return seen[0]


def patch_logits(D, x: torch.Tensor) -> torch.Tensor:
    """gankit D's patch logits (before their average)."""
    return D.head(D.features(x)[1])


def start_stats(models, seeds: int) -> list[tuple[str, float, float]]:
    rows: dict[str, list[float]] = {}
    for s in range(seeds):
        g = torch.Generator().manual_seed(100 + s)
        z, x = torch.randn(4, Z, generator=g), torch.randn(4, 3, RES, RES, generator=g)
        with torch.no_grad():
            for label, sn_g in (("gankit (default: no spectral norm in G)", False), ("gankit, model.sn_g=true", True)):
                torch.manual_seed(s)
                G, D = build_ours(sn_g)
                rows.setdefault(f"G output std before the last nonlinearity, {label}", []).append(float(pre_output(G, z).std()))
                if sn_g:
                    rows.setdefault("D patch-logit std on unit images, gankit", []).append(float(patch_logits(D, x).std()))
            torch.manual_seed(s)
            rG, rD = build_ref(models)
            for _ in range(15):  # their spectral norm's vectors start random and iterate once per training forward
                rG(z[:2]), rD(x[:2], "fake")
            big = rG(z)[0]
            rows.setdefault("G output std before the last nonlinearity, the authors'", []).append(float(big.std()))
            logits = rD(x, "fake")  # [big branch's patch logits, small branch's], flattened
            n_big = 4 * 25
            rows.setdefault("D patch-logit std on unit images, the authors' (full-size branch)", []).append(float(logits[:n_big].std()))
            rows.setdefault("D patch-logit std on unit images, the authors' (128 px branch)", []).append(float(logits[n_big:].std()))
    return [(k, statistics.median(v), (max(v) - min(v)) / 2) for k, v in sorted(rows.items())]


def g_name_map(G) -> dict[str, str]:
    """gankit G -> the authors': init -> init.init, ups[r] -> feat_r (same layer indices), sles[r].net ->
    se_r.main, to_image -> to_big; noise strengths -> NoiseInjection weights."""
    out = {}
    for k in G.state_dict():
        parts = k.split(".")
        if parts[0] == "init":
            ref = ["init", "init", *parts[1:]]
        elif parts[0] == "ups":
            ref = [f"feat_{parts[1]}", *parts[2:]]
        elif parts[0] == "sles":
            ref = [f"se_{parts[1]}", "main", *parts[3:]]
        elif parts[0] == "to_image":
            ref = ["to_big", *parts[1:]]
        else:
            raise SystemExit(f"name map: no reference name for {k}")
        if ref[-1] == "const" or k == "to_image.bias":  # gankit's fixed noise draw for eval mode; a bias the authors' lacks (zeroed)
            continue
        name = ".".join(ref)
        name = (name.replace("parametrizations.weight.original", "weight_orig")
                .replace("parametrizations.weight.0._u", "weight_u").replace("parametrizations.weight.0._v", "weight_v"))
        out[k] = name.replace(".strength", ".weight")
    return out


def copy_into(ours, ref, mapping: dict[str, str], allowed_unset: tuple[str, ...] = ()) -> None:
    src, dst = ours.state_dict(), ref.state_dict()
    for k, name in mapping.items():
        value = src[k].reshape(dst[name].shape) if name in dst and src[k].numel() == dst[name].numel() else None
        if value is None:
            raise SystemExit(f"name map: {k} {tuple(src[k].shape)} -> {name} {tuple(dst[name].shape) if name in dst else 'missing'}")
        dst[name] = value.clone()
    unset = [k for k in dst if k not in set(mapping.values()) and not k.endswith("num_batches_tracked") and not k.startswith(allowed_unset)]
    if unset:
        raise SystemExit(f"name map: reference weights left unset: {unset}")
    ref.load_state_dict(dst)


def randomise(net: nn.Module, seed: int) -> None:
    """Every parameter and batch-norm statistic random (variances positive), the noise strengths zero
    and to_image's bias zero (the authors' has none)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in [*net.named_parameters(), *net.named_buffers()]:
            if not p.is_floating_point() or name.endswith("const"):
                continue
            if "running_var" in name:
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif name.endswith("strength") or name == "to_image.bias":
                p.zero_()
            else:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


def same_weights(models) -> list[tuple[str, float]]:
    torch.manual_seed(0)
    gG, gD = build_ours(True)
    rG, rD = build_ref(models)
    randomise(gG, 1)
    copy_into(gG, rG, g_name_map(gG), allowed_unset=("to_128.",))
    z = torch.randn(2, Z, generator=torch.Generator().manual_seed(3))
    rows = []
    for mode in ("eval", "train"):
        gG.train(mode == "train"), rG.train(mode == "train")
        with torch.no_grad():
            a, b = pre_output(gG, z), rG(z)[0]
        rows.append((f"G output before the last nonlinearity, {mode} mode" + (
            " (PyTorch's two spectral norms iterate u and v in opposite orders: the layers not followed by batch norm,"
            " SLE and to_image, differ)" if mode == "train" else ""), rel(a, b)))
    # one D down block (gankit DownBlock against the authors' DownBlockComp)
    ours, ref = gD.downs[1], rD.down_8
    randomise(ours, 2)
    block_map = {k: k.replace("parametrizations.weight.original", "weight_orig").replace("parametrizations.weight.0._u", "weight_u")
                 .replace("parametrizations.weight.0._v", "weight_v") for k in ours.state_dict()}
    copy_into(ours, ref, block_map)
    h = torch.randn(2, ours.main[0].in_channels, 64, 64, generator=torch.Generator().manual_seed(4))
    ours.eval(), ref.eval()
    with torch.no_grad():
        rows.append(("one D down block (strided conv path + pooled 1x1 path, averaged)", rel(ours(h), ref(h))))
    return rows


def main() -> None:
    a = reference_path(__doc__.splitlines()[0], "odegeasslbc/FastGAN-pytorch", "models.py")
    models = reference(a.ref)
    print_tables(f"FastGAN: gankit against the authors' networks ({RES}x{RES}, width {WIDTH}, z {Z})", a.seeds,
                 start_stats(models, a.seeds), same_weights(models))


if __name__ == "__main__":
    main()
