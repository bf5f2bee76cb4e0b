"""Pictures with Pillow only: image grids, 2D scatter plots, GIF animations."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] float [N, C, H, W] -> uint8 [N, H, W, C]."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def grid_image(x: torch.Tensor, nrow: int | None = None, pad: int = 2, scale: int = 0) -> Image.Image:
    """Tile images [N, C, H, W] in [-1, 1] into one picture, upscaled so it is at least ~160 px wide."""
    imgs = to_uint8(x)
    n, h, w, c = imgs.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    canvas = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i, im in enumerate(imgs):
        r, q = divmod(i, nrow)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = im
    pil = Image.fromarray(canvas[..., 0] if c == 1 else canvas, "L" if c == 1 else "RGB")
    scale = scale or max(1, 320 // (nrow * (w + pad)))
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)
    return pil


def save_grid(x: torch.Tensor, path: Path, nrow: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image(x, nrow).save(path)


def scatter_image(real: np.ndarray, fake: np.ndarray, size: int = 512) -> Image.Image:
    """Real points in grey, generated ones in blue, on a square canvas with a margin."""
    ref = real if len(real) else fake[np.isfinite(fake).all(1)]  # the frame: real data when given
    lo, hi = ref.min(0), ref.max(0)
    span = float(max(hi - lo)) * 1.3 or 1.0
    centre = (lo + hi) / 2
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def px(p: np.ndarray) -> np.ndarray:
        return (p - centre) / span * size + size / 2

    for pts, colour, r in ((real, (170, 170, 170), 1), (fake, (30, 80, 220), 1)):
        pts = pts[np.isfinite(pts).all(1)]
        for x, y in px(pts):
            draw.ellipse((x - r, size - y - r, x + r, size - y + r), fill=colour)
    return img


def save_scatter(real: np.ndarray, fake: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scatter_image(real, fake).save(path)


def save_gif(frames: list[Image.Image], path: Path, ms: int = 80) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms, loop=0)
