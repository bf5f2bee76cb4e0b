"""gankit's stylegan2 against NVlabs/stylegan2-ada-pytorch, side by side on fixed inputs.

    .venv/bin/python benchmarks/parity/stylegan2.py --ref PATH/TO/stylegan2-ada-pytorch [--seeds 5]

PATH is a checkout of https://github.com/NVlabs/stylegan2-ada-pytorch; its networks are imported
from there (the CPU reference paths of `bias_act`, `upfirdn2d` and `conv2d_resample`), never copied
here. Both are built at one gankit config (32x32 RGB, 256 channels at every resolution, z 64,
w 256, 4 mapping layers, ten classes; the reference with channel_base 16384, channel_max 256, no
fp16) and the harness reports:

1. start-up statistics over several seeds, each network built by its own code: G's output std
   (noise off), D's logit std on unit images, conditional and not;
2. identical weights (gankit's copied into the reference by the name map below): G's mapping
   network (z and label to w), D's head with its label map (StyleGAN2-ADA's `<out, cmap> /
   sqrt(dim)`), where the maths is the same; and the whole D, which differs on purpose in its
   downsampling (gankit: 2x2 box average; the reference: the [1, 3, 3, 1] FIR filter): the size of
   that deviation (a batch of 4: one minibatch-std group, so the grouping does not differ); G's
   synthesis network (fixed noise maps copied too): its 4x4 block, where the maths is the same, and the
   whole network, which differs on purpose in its upsampling (gankit: bilinear; the reference: a
   transposed convolution and the [1, 3, 3, 1] filter), also with gankit's upsampling swapped in the
   harness for the filter (`models.layers.fir_resample`): what remains then is the reference's.
"""
from __future__ import annotations

import statistics
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

from common import importable, print_tables, reference_path, rel

from gankit.config import make_config
from gankit.models import build_models, make_spec
from gankit.models import stylegan2 as sg2
from gankit.models.layers import fir_resample

RES, Z, W, CH, CLASSES, MAP = 32, 64, 256, 256, 10, 4


def reference(path: Path):
    importable(path)
    from training import networks  # noqa: E402  (the user's checkout)
    return networks


def build_ref(nets, conditional: bool):
    c = CLASSES if conditional else 0
    G = nets.Generator(z_dim=Z, c_dim=c, w_dim=W, img_resolution=RES, img_channels=3, mapping_kwargs=dict(num_layers=MAP),
                       synthesis_kwargs=dict(channel_base=CH * RES, channel_max=CH, num_fp16_res=0))
    D = nets.Discriminator(c_dim=c, img_resolution=RES, img_channels=3, channel_base=CH * RES, channel_max=CH, num_fp16_res=0,
                           epilogue_kwargs=dict(mbstd_group_size=4))
    return G.eval(), D.eval()


def build_ours(conditional: bool):
    cfg = make_config({}, ["model.arch=stylegan2", f"model.widths=[{CH}]", f"model.z_dim={Z}",
                           f"model.conditional={str(conditional).lower()}"])
    G, D = build_models(make_spec(cfg.model, (3, RES, RES), CLASSES if conditional else 0, "image"), "stylegan2")
    return G.eval(), D.eval()


def start_stats(nets, seeds: int) -> list[tuple[str, float, float]]:
    rows: dict[str, list[float]] = {}
    for cond in (False, True):
        tag = "conditional" if cond else "unconditional"
        for s in range(seeds):
            torch.manual_seed(s)
            gG, gD = build_ours(cond)
            torch.manual_seed(s)
            rG, rD = build_ref(nets, cond)
            g = torch.Generator().manual_seed(100 + s)
            z, x = torch.randn(64, Z, generator=g), torch.randn(64, 3, RES, RES, generator=g)
            y = torch.arange(64) % CLASSES if cond else None
            c = F.one_hot(y, CLASSES).float() if cond else torch.zeros(64, 0)
            for m in gG.modules():  # noise off in both, for the comparison
                if hasattr(m, "noise_strength"):
                    m.noise_strength.data.zero_()
            with torch.no_grad():
                vals = {f"G out std, {tag} (ours)": gG(z, y).std(), f"G out std, {tag} (StyleGAN2-ADA)": rG(z, c, noise_mode="none").std(),
                        f"D logit std, {tag} (ours)": gD(x, y).std(), f"D logit std, {tag} (StyleGAN2-ADA)": rD(x, c).std()}
            for k, v in vals.items():
                rows.setdefault(k, []).append(float(v))
    return [(k, statistics.median(v), (max(v) - min(v)) / 2) for k, v in rows.items()]


def d_name_map(D) -> dict[str, str]:
    m = {"from_rgb.weight": f"b{RES}.fromrgb.weight", "from_rgb.bias": f"b{RES}.fromrgb.bias",
         "conv.weight": "b4.conv.weight", "conv.bias": "b4.conv.bias", "fc.weight": "b4.fc.weight", "fc.bias": "b4.fc.bias",
         "head.out.weight": "b4.out.weight", "head.out.bias": "b4.out.bias"}
    for i in range(len(D.blocks)):
        res = RES >> i
        for part in ("conv0.weight", "conv0.bias", "conv1.weight", "conv1.bias", "skip.weight"):
            m[f"blocks.{i}.{part}"] = f"b{res}.{part}"
    if hasattr(D.head, "embed"):
        m["head.embed.weight"], m["head.embed.bias"] = "mapping.embed.weight", "mapping.embed.bias"
        for i in range(len(D.head.mapping)):
            m[f"head.mapping.{i}.weight"], m[f"head.mapping.{i}.bias"] = f"mapping.fc{i}.weight", f"mapping.fc{i}.bias"
    return m


def g_mapping_map(G) -> dict[str, str]:
    m = {}
    if G.mapping.embed is not None:
        m["mapping.embed.weight"], m["mapping.embed.bias"] = "mapping.embed.weight", "mapping.embed.bias"
    for i in range(len(G.mapping.layers)):
        m[f"mapping.layers.{i}.weight"], m[f"mapping.layers.{i}.bias"] = f"mapping.fc{i}.weight", f"mapping.fc{i}.bias"
    return m


def g_synthesis_map(G) -> dict[str, str]:
    """gankit's synthesis layers -> the reference's blocks: convs[0] and to_rgbs[0] -> b4.conv1 / b4.torgb;
    at 4 * 2**i: convs[2i - 1], convs[2i], to_rgbs[i] -> b{res}.conv0, .conv1, .torgb."""
    m = {"const": "synthesis.b4.const"}
    layer = {"conv.affine.weight": "affine.weight", "conv.affine.bias": "affine.bias", "conv.weight": "weight", "bias": "bias"}
    style = {**layer, "noise_strength": "noise_strength", "noise_const": "noise_const"}
    targets = [("convs.0", "b4.conv1", style), ("to_rgbs.0", "b4.torgb", layer)]
    for i in range(1, len(G.to_rgbs)):
        res = 4 << i
        targets += [(f"convs.{2 * i - 1}", f"b{res}.conv0", style), (f"convs.{2 * i}", f"b{res}.conv1", style),
                    (f"to_rgbs.{i}", f"b{res}.torgb", layer)]
    for ours, ref, names in targets:
        for a, b in names.items():
            m[f"synthesis_of.{ours}.{a}"] = f"synthesis.{ref}.{b}"
    return {k.replace("synthesis_of.", ""): v for k, v in m.items()}


@contextmanager
def fir_upsampling():
    """gankit's stylegan2 with its bilinear 2x upsampling replaced by the [1, 3, 3, 1]-filtered one
    (for the harness only: F.interpolate as the stylegan2 module sees it)."""
    real = sg2.F

    class Patched:
        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def interpolate(x, scale_factor=None, mode=None, align_corners=None):
            return fir_resample(x, up=True)

    sg2.F = Patched()
    try:
        yield
    finally:
        sg2.F = real


def copy_into(ours, ref, mapping: dict[str, str]) -> None:
    src, dst = ours.state_dict(), ref.state_dict()
    for a, b in mapping.items():
        if src[a].shape != dst[b].shape:
            raise SystemExit(f"name map: {a} {tuple(src[a].shape)} -> {b} {tuple(dst[b].shape)}")
        dst[b] = src[a].clone()
    ref.load_state_dict(dst)


def randomise(net, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)


def same_weights(nets, cond: bool) -> list[tuple[str, float]]:
    tag = "conditional" if cond else "unconditional"
    torch.manual_seed(0)
    gG, gD = build_ours(cond)
    rG, rD = build_ref(nets, cond)
    randomise(gG, 1), randomise(gD, 2)
    dmap = d_name_map(gD)
    unset = [k for k in gD.state_dict() if k not in dmap]
    if unset:
        raise SystemExit(f"name map: no reference name for {unset}")
    gmap = {**g_mapping_map(gG), **g_synthesis_map(gG)}
    unset = [k for k in gG.state_dict() if k not in gmap and k != "mapping.w_avg"]
    if unset:
        raise SystemExit(f"name map: no reference name for {unset}")
    copy_into(gG, rG, gmap)
    copy_into(gD, rD, dmap)
    gG.eval(), rG.eval()
    g = torch.Generator().manual_seed(3)
    z, x, h = torch.randn(4, Z, generator=g), torch.randn(4, 3, RES, RES, generator=g), torch.randn(4, CH, generator=g)
    y = torch.arange(4) % CLASSES if cond else None
    c = F.one_hot(y, CLASSES).float() if cond else torch.zeros(4, 0)
    with torch.no_grad():
        out = [(f"G mapping (z, label -> w), {tag}", rel(gG.mapping(z, y), rG.mapping(z, c)[:, 0])),
               (f"D head and label map, {tag}", rel(gD.head(h, y), rD.b4.out(h).squeeze(1) if not cond else
                                                     (rD.b4.out(h) * rD.mapping(None, c)).sum(1) / CH ** 0.5)),
               (f"whole D, {tag} (deliberate: box against FIR downsampling)", rel(gD(x, y), rD(x, c).squeeze(1)))]
        # StyleGAN2's up-conv is a transposed convolution (kernel flipped against a plain conv) then the filter:
        # with the filter swapped in and the kernels copied flipped, one up layer equals gankit's inside the
        # image; what is left is at the border, where the reference filters the conv's full output
        ups = [(gG.convs[2 * i - 1], getattr(rG.synthesis, f"b{4 << i}").conv0) for i in range(1, len(gG.to_rgbs))]
        for ours_layer, ref_layer in ups:
            ref_layer.weight.copy_(ours_layer.conv.weight.flip([2, 3]))
        ws = gG.ws(z, y)
        x4, img4 = rG.synthesis.b4(None, None, ws[:, :2], noise_mode="const")
        ours4 = gG.to_rgbs[0](gG.convs[0](gG.const.unsqueeze(0).expand(4, -1, -1, -1), ws[:, 0]), ws[:, 1])
        ref_img = rG.synthesis(ws, noise_mode="const")
        out += [(f"G synthesis at 4x4 (const, style conv, fixed noise, toRGB), {tag}", rel(ours4, img4)),
                (f"whole G synthesis, {tag} (deliberate: bilinear against FIR upsampling; kernels flipped)", rel(gG.synthesis(ws), ref_img))]
        with fir_upsampling():
            h = torch.randn(4, CH, 4, 4, generator=g)
            a, b = ups[0][0](h, ws[:, 1]), ups[0][1](h, ws[:, 1], noise_mode="const")
            out += [(f"G's first up layer (4 to 8), {tag}, filter swapped in, kernel flipped: inside (1 px from the border)",
                     rel(a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1])),
                    (f"G's first up layer (4 to 8), {tag}, filter swapped in, kernel flipped: whole", rel(a, b)),
                    (f"whole G synthesis, {tag}, filter swapped in, kernels flipped", rel(gG.synthesis(ws), rG.synthesis(ws, noise_mode="const")))]
    return out


def main() -> None:
    a = reference_path(__doc__.splitlines()[0], "NVlabs/stylegan2-ada-pytorch", "training/networks.py")
    nets = reference(a.ref)
    same = [row for cond in (False, True) for row in same_weights(nets, cond)]
    print_tables(f"StyleGAN2 parity: gankit stylegan2 against {a.ref} ({RES}x{RES} RGB, {CH} channels, z {Z}, w {W}, "
                 f"{MAP} mapping layers)", a.seeds, start_stats(nets, a.seeds), same)


if __name__ == "__main__":
    main()
