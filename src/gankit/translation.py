"""Translating images with a trained translation generator (model.family=pix2pix): at any size, in tiles.

The U-Net halves the image `depth` times, so an image is padded (reflected) on the right and bottom
to a multiple of 2**depth and the output cropped back. An image larger than `tile` is translated in
overlapping windows, aligned to that multiple, whose outputs are blended with linear ramps over the
overlaps: memory stays that of one window whatever the image size. Every layer of the network in
eval mode is local, and a window sees `overlap` pixels of context beyond the part where it alone
counts, so with `overlap` >= the network's context (`UNet.context`, the default) the result equals
the untiled translation outside the overlaps (to float rounding); inside them it is a blend of two
windows that each saw less context (the difference is measured in tests/test_translation.py).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import TRANSLATION
from .console import say
from .errors import GankitError

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
    stride = tile - overlap
    starts = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(starts))


def _ramp(n: int, start: int, size: int, overlap: int) -> torch.Tensor:
    """A window's blending weights along one axis: 1, falling to 0 over `overlap` pixels towards each
    edge that another window overlaps (at the image's own edges it stays 1)."""
    w = torch.ones(n)
    if overlap <= 0:
        return w
    pos = torch.arange(n, dtype=torch.float32)
    if start > 0:
        w = torch.minimum(w, (pos + 0.5) / overlap)
    if start + n < size:
        w = torch.minimum(w, (n - pos - 0.5) / overlap)
    return w.clamp(min=0.0)


@torch.no_grad()
def translate_tensor(G: nn.Module, a: torch.Tensor, tile: int = DEFAULT_TILE, overlap: int | None = None) -> torch.Tensor:
    """Inputs a [N, C_in, H, W] in [-1, 1] -> outputs [N, C_out, H, W] in [-1, 1] (on the CPU, float32).
    `tile`: the largest window side (rounded down to the network's multiple, raised to fit the overlap);
    `overlap`: context shared by neighbouring windows (default: the network's context, exact tiling)."""
    if a.dim() != 4 or a.shape[1] != G.in_channels:
        raise GankitError(f"images: this translator takes {G.in_channels}-channel images [N, {G.in_channels}, H, W], got shape {list(a.shape)}")
    m = G.multiple
    overlap = G.context if overlap is None else m * math.ceil(max(0, overlap) / m)
    tile = max(m * (tile // m), 2 * overlap + m)
    n, _, h, w = a.shape
    ph, pw = m * math.ceil(h / m), m * math.ceil(w / m)
    device = next(G.parameters()).device
    was = G.training
    G.eval()
    try:
        x = a.float()
        if (ph, pw) != (h, w):
            mode = "reflect" if ph - h < h and pw - w < w else "replicate"  # reflection needs the image larger than the pad
            x = F.pad(x, (0, pw - w, 0, ph - h), mode=mode)
        if ph <= tile and pw <= tile:
            return G(x.to(device), None).float().cpu()[..., :h, :w]
        rows, cols = window_plan(ph, tile, overlap), window_plan(pw, tile, overlap)
        out = torch.zeros(n, G.out_channels, ph, pw)
        weight = torch.zeros(1, 1, ph, pw)
        for top in rows:
            th = min(tile, ph)
            wy = _ramp(th, top, ph, overlap)
            for left in cols:
                tw = min(tile, pw)
                wx = _ramp(tw, left, pw, overlap)
                y = G(x[..., top:top + th, left:left + tw].to(device), None).float().cpu()
                wgt = (wy[:, None] * wx[None, :])[None, None]
                out[..., top:top + th, left:left + tw] += y * wgt
                weight[..., top:top + th, left:left + tw] += wgt
        return (out / weight.clamp(min=1e-12))[..., :h, :w]
    finally:
        G.train(was)


def read_inputs(paths: list[str], channels: int) -> list[tuple[Path, Path, np.ndarray]]:
    """(file, name relative to what was given, uint8 [C, H, W]) for each image file given or found in a
    given folder; converted to the translator's input channels as training data are."""
    from .data.images import IMAGE_EXTS, decode_file, to_array

    found: list[tuple[Path, Path]] = []
    for given in paths:
        p = Path(given).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTS)
            if not files:
                raise GankitError(f"{p}: no images found (looked for {', '.join(sorted(IMAGE_EXTS))}, recursively)")
            found += [(f, f.relative_to(p)) for f in files]
        elif p.is_file():
            found.append((p, Path(p.name)))
        else:
            raise GankitError(f"{p}: no such file or folder")
    return [(f, rel, to_array(decode_file(f), channels)) for f, rel in found]


def translate_files(target: str | Path, inputs: list[str], out: Path, tile: int = DEFAULT_TILE, overlap: int | None = None,
                    device: str = "cpu") -> list[Path]:
    """`gankit translate`: each input image translated at its own size into `out` as PNG (same relative names)."""
    from PIL import Image

    from .paths import check_writable
    from .run import load_generator
    from .viz import to_uint8

    if tile < 1:
        raise GankitError(f"--tile: must be >= 1, got {tile}")
    if overlap is not None and overlap < 0:
        raise GankitError(f"--overlap: must be >= 0, got {overlap}")
    lg = load_generator(target, device)
    check_translator(lg.cfg.model.family, str(target))
    G = lg.G
    if overlap is not None and overlap < G.context:
        say(f"--overlap {overlap}: less than the network's context ({G.context} px); tiles differ from a whole-image translation near their edges")
    images = read_inputs(inputs, G.in_channels)
    check_writable(out, flag="--out")
    written = []
    from tqdm import tqdm

    from . import console

    for f, rel, arr in tqdm(images, desc="translating", unit="img", disable=console.is_quiet() or not console.on_terminal() or len(images) < 2):
        y = translate_tensor(G, torch.tensor(arr)[None].float() / 127.5 - 1.0, tile, overlap)
        img = to_uint8(y)[0]
        dest = (out / rel).with_suffix(".png")
        dest.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(dest)
        written.append(dest)
    say(f"translated {len(written)} image(s) into {out}")
    return written


def triplets(inputs: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Rows of (input, output, target), grey inputs shown in the targets' channels, for a grid with nrow=3."""
    if inputs.shape[1] != targets.shape[1]:
        inputs = inputs.mean(1, keepdim=True).expand(-1, targets.shape[1], -1, -1)
    return torch.stack([inputs, outputs, targets], 1).flatten(0, 1)
