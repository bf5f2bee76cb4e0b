"""Translating images with a trained translation generator (model.family=pix2pix): at any size, in tiles.

The U-Net halves the image `depth` times, so an image is padded (reflected) on the right and bottom
to a multiple of 2**depth and the output cropped back. An image larger than `tile` is translated in
overlapping windows aligned to that multiple: memory stays that of one window whatever the image size.
Two things make tiles equal the whole image. The normalisation's statistics are per image, so they
are gathered over the whole image first, one norm layer at a time, each window adding the part it
owns (`InstanceNorm.gather`), then fixed (`InstanceNorm.fixed`). And each window owns the pixels up
to the middle of its overlaps; with `overlap` >= twice the network's context (`UNet.context`, the
default) every owned pixel sees all it depends on, and the result equals the untiled translation to
float rounding. With a smaller overlap the windows' outputs are blended with linear ramps across the
overlaps instead (a seam's error is measured in tests/test_translation.py).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TRANSLATION
from ..console import say
from ..errors import GankitError
from ..models.layers import evaluating
from ..models.unet import InstanceNorm

DEFAULT_TILE = 512


def check_translator(family: str, where: str) -> None:
    if family not in TRANSLATION:
        raise GankitError(f"{where}: a generation run (model.family={family}) has no input image to translate; "
                          f"translate needs a translation run (model.family={', '.join(TRANSLATION)})")


def window_plan(size: int, tile: int, overlap: int) -> list[int]:
    """Start positions of windows of `tile` along an axis of `size` (all multiples of what tile and
    overlap are multiples of): stride tile - overlap, the last window flush with the end."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile - overlap)) + [size - tile]
    return sorted(set(starts))


def owned(starts: list[int], tile: int, size: int, m: int) -> list[tuple[int, int]]:
    """The part of the axis each window owns: its overlaps split at their middle (on a multiple of m)."""
    bounds = [0] + [m * round((b + a + tile) / 2 / m) for a, b in zip(starts, starts[1:])] + [size]
    return list(zip(bounds, bounds[1:]))


def _ramp(n: int, start: int, size: int, overlap: int) -> torch.Tensor:
    """A window's blending weights along one axis: 1, falling to 0 over `overlap` pixels towards each
    edge that another window overlaps (at the image's own edges it stays 1)."""
    w = torch.ones(n)
    pos = torch.arange(n, dtype=torch.float32)
    if start > 0:
        w = torch.minimum(w, (pos + 0.5) / overlap)
    if start + n < size:
        w = torch.minimum(w, (n - pos - 0.5) / overlap)
    return w.clamp(min=0.0)


class _Gathered(Exception):
    """Raised by a norm's gather hook: the rest of the forward pass is not needed."""


def _whole_image_statistics(G: nn.Module, x: torch.Tensor, windows: list[tuple[slice, slice, slice, slice]], device) -> list[InstanceNorm]:
    """Fix every norm layer's statistics to the whole image's, one layer at a time in forward order:
    each window's forward pass (the layers before already fixed) sums the part of the layer's input it owns."""
    norms = _in_forward_order(G, [m for m in G.modules() if isinstance(m, InstanceNorm)], x.shape[1], device)
    for norm in norms:
        acc: dict[str, torch.Tensor | int] = {"sum": 0, "sq": 0, "count": 0}
        for win_r, win_c, own_r, own_c in windows:
            side = win_r.stop - win_r.start

            def gather(h: torch.Tensor, own_r=own_r, own_c=own_c, win_r=win_r, win_c=win_c, side=side) -> None:
                s = side // h.shape[-2]  # input pixels per feature pixel here
                part = h.double()[..., (own_r.start - win_r.start) // s:(own_r.stop - win_r.start) // s,
                                  (own_c.start - win_c.start) // s:(own_c.stop - win_c.start) // s]
                acc["sum"] = acc["sum"] + part.sum((2, 3), keepdim=True)
                acc["sq"] = acc["sq"] + (part * part).sum((2, 3), keepdim=True)
                acc["count"] += part.shape[-1] * part.shape[-2]
                raise _Gathered

            norm.gather = gather
            try:
                G(x[..., win_r, win_c].to(device), None)
            except _Gathered:
                pass
            finally:
                norm.gather = None
        mean = acc["sum"] / acc["count"]
        var = (acc["sq"] / acc["count"] - mean * mean).clamp_min(0)
        norm.fixed = (mean.float(), var.float())
    return norms


def _in_forward_order(G: nn.Module, norms: list[nn.Module], channels: int, device) -> list[nn.Module]:
    """`norms` in the order a forward pass runs them (a U-Net's decoder runs its blocks in reverse)."""
    seen: list[nn.Module] = []
    hooks = [m.register_forward_pre_hook(lambda mod, _args: seen.append(mod)) for m in norms]
    try:
        side = max(G.multiple, 16)  # (reflection padding needs a few pixels at the smallest scale)
        G(torch.zeros(1, channels, side, side, device=device), None)
    finally:
        for h in hooks:
            h.remove()
    return seen


@torch.no_grad()
def translate_tensor(G: nn.Module, a: torch.Tensor, tile: int = DEFAULT_TILE, overlap: int | None = None) -> torch.Tensor:
    """Inputs a [N, C_in, H, W] in [-1, 1] -> outputs [N, C_out, H, W] in [-1, 1] (on the CPU, float32).
    `tile`: the largest window side (rounded down to the network's multiple, raised to hold the overlap);
    `overlap`: pixels shared by neighbouring windows (default: twice the network's context, exact tiling)."""
    if a.dim() != 4 or a.shape[1] != G.in_channels:
        raise GankitError(f"images: this translator takes {G.in_channels}-channel images [N, {G.in_channels}, H, W], got shape {list(a.shape)}")
    m = G.multiple
    overlap = 2 * G.context if overlap is None else m * math.ceil(max(0, overlap) / m)
    tile = max(m * (tile // m), overlap + m)
    n, _, h, w = a.shape
    ph, pw = m * math.ceil(h / m), m * math.ceil(w / m)
    device = next(G.parameters()).device
    x = a.float()
    if (ph, pw) != (h, w):
        mode = "reflect" if ph - h < h and pw - w < w else "replicate"  # reflection needs the image larger than the pad
        x = F.pad(x, (0, pw - w, 0, ph - h), mode=mode)
    if ph <= tile and pw <= tile:
        with evaluating(G):
            return G(x.to(device), None).float().cpu()[..., :h, :w]
    rows, cols = window_plan(ph, tile, overlap), window_plan(pw, tile, overlap)
    th, tw = min(tile, ph), min(tile, pw)
    windows = [(slice(top, top + th), slice(left, left + tw), slice(*r), slice(*c))
               for top, r in zip(rows, owned(rows, th, ph, m)) for left, c in zip(cols, owned(cols, tw, pw, m))]
    exact = overlap >= 2 * G.context
    norms = []
    with evaluating(G):
        try:
            norms = _whole_image_statistics(G, x, windows, device)
            out = torch.zeros(n, G.out_channels, ph, pw)
            weight = torch.zeros(1, 1, ph, pw)
            for win_r, win_c, own_r, own_c in windows:
                y = G(x[..., win_r, win_c].to(device), None).float().cpu()
                if exact:  # each pixel from the window that owns it
                    out[..., own_r, own_c] = y[..., own_r.start - win_r.start:own_r.stop - win_r.start,
                                               own_c.start - win_c.start:own_c.stop - win_c.start]
                    continue
                wgt = (_ramp(th, win_r.start, ph, overlap)[:, None] * _ramp(tw, win_c.start, pw, overlap)[None, :])[None, None]
                out[..., win_r, win_c] += y * wgt
                weight[..., win_r, win_c] += wgt
            return (out if exact else out / weight.clamp(min=1e-12))[..., :h, :w]
        finally:
            for norm in norms:
                norm.fixed = None


def translator(G: nn.Module, direction: str, where: str) -> nn.Module:
    """The network that translates in `direction` (AtoB, BtoA): CycleGAN has one for each, pix2pix only AtoB."""
    if direction not in ("AtoB", "BtoA"):
        raise GankitError(f"{where}: direction must be AtoB or BtoA, got {direction!r}")
    if hasattr(G, "direction"):
        return G.direction(direction)
    if direction != "AtoB":
        raise GankitError(f"{where}: a pix2pix run translates one way only (its inputs to its targets); BtoA needs a cyclegan run")
    return G


def translate_files(target: str | Path, inputs: list[str], out: Path, tile: int = DEFAULT_TILE, overlap: int | None = None,
                    device: str = "cpu", direction: str = "AtoB") -> list[Path]:
    """`gankit translate`: each input image translated at its own size into `out` as PNG (same relative names);
    `direction` BtoA: a CycleGAN's other generator."""
    from PIL import Image

    from ..paths import check_writable
    from ..viz import to_uint8
    from .loader import load_generator

    if tile < 1:
        raise GankitError(f"--tile: must be >= 1, got {tile}")
    if overlap is not None and overlap < 0:
        raise GankitError(f"--overlap: must be >= 0, got {overlap}")
    lg = load_generator(target, device)
    check_translator(lg.cfg.model.family, str(target))
    G = translator(lg.G, direction, "--direction")
    if overlap is not None and overlap < G.context:
        say(f"--overlap {overlap}: less than the network's context ({G.context} px); tiles differ from a whole-image translation near their edges")
    from ..data.images import decode_file, find_images, to_array

    images = find_images(inputs)
    check_writable(out, flag="--out")
    written = []
    from tqdm import tqdm

    from .. import console

    for f, rel in tqdm(images, desc="translating", unit="img", disable=console.is_quiet() or not console.on_terminal() or len(images) < 2):
        arr = to_array(decode_file(f), G.in_channels)  # one image held at a time, in the input's channels as training data were
        y = translate_tensor(G, torch.tensor(arr)[None].float() / 127.5 - 1.0, tile, overlap)
        img = to_uint8(y)[0]
        dest = (out / rel).with_suffix(".png")
        dest.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(dest)
        written.append(dest)
    say(f"translated {len(written)} image(s) into {out}")
    return written


def translation_grid(G: nn.Module, ds, seed: int, n: int = 8) -> torch.Tensor:
    """What a translation run's sample grids show, rows of three images for a grid with nrow=3, by the
    network `translate` uses: paired data: input, output, target, for n fixed pairs; a CycleGAN:
    A, A to B, back to A for n/2 fixed images of A, then B, B to A, back to B for n/2 of B."""
    g = torch.Generator().manual_seed(seed)
    if not hasattr(G, "ba"):
        idx = torch.randperm(len(ds), generator=g)[:n].sort().values
        a = ds.inputs[idx].float() / 127.5 - 1.0
        return _rows([a, translate_tensor(G, a), ds.to_float(idx)])
    na, nb = len(ds.inputs), len(ds.x)
    ia = torch.randperm(na // 2 if ds.paired else na, generator=g)[: n // 2].sort().values  # (paired data: A is the first half)
    ib = (na // 2 if ds.paired else 0) + torch.randperm(nb - na // 2 if ds.paired else nb, generator=g)[: n // 2].sort().values
    a, b = ds.inputs[ia].float() / 127.5 - 1.0, ds.to_float(ib)
    fb, fa = translate_tensor(G.ab, a), translate_tensor(G.ba, b)
    return torch.cat([_rows([a, fb, translate_tensor(G.ba, fb)]), _rows([b, fa, translate_tensor(G.ab, fa)])])


def _rows(columns: list[torch.Tensor]) -> torch.Tensor:
    """Interleave columns [N, C_i, H, W] into rows, all shown with the most channels (grey repeated)."""
    c = max(x.shape[1] for x in columns)
    return torch.stack([x.expand(-1, c, -1, -1) if x.shape[1] != c else x for x in columns], 1).flatten(0, 1)
