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


PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def line_chart(series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str, title: str = "",
               hline: tuple[float, str] | None = None, size: tuple[int, int] = (720, 420), ymax: float | None = None) -> Image.Image:
    """Curves (label -> [(x, y), ...]) on shared axes, with an optional labelled horizontal line;
    points above `ymax` are left out (early, far-off values would flatten the rest)."""
    keep = (lambda y: math.isfinite(y) and (ymax is None or y <= ymax))
    series = {k: [(x, y) for x, y in s if math.isfinite(x) and keep(y)] for k, s in series.items()}
    w, h = size
    left, right, top, bottom = 60, 16, 28, 44
    pts = [p for s in series.values() for p in s]
    if hline is not None:
        pts.append((pts[0][0] if pts else 0.0, hline[0]))
    xs, ys = [p[0] for p in pts] or [0.0, 1.0], [p[1] for p in pts] or [0.0, 1.0]
    x0, x1 = min(0.0, min(xs)), max(xs) or 1.0
    y0, y1 = min(0.0, min(ys)), max(ys) * 1.05 or 1.0
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0 or 1) * (w - left - right), h - bottom - (y - y0) / (y1 - y0 or 1) * (h - top - bottom))

    d.rectangle([left, top, w - right, h - bottom], outline=(120, 120, 120))
    for i in range(6):  # ticks
        xv, yv = x0 + (x1 - x0) * i / 5, y0 + (y1 - y0) * i / 5
        X, _ = px(xv, y0)
        _, Y = px(x0, yv)
        d.line([X, h - bottom, X, h - bottom + 4], fill=(120, 120, 120))
        d.text((X - 10, h - bottom + 6), f"{xv:.3g}", fill="black")
        d.line([left - 4, Y, left, Y], fill=(120, 120, 120))
        d.text((4, Y - 6), f"{yv:.3g}", fill="black")
    d.text((left + (w - left - right) // 2 - 3 * len(xlabel), h - 18), xlabel, fill="black")
    d.text((left, 4), f"{title}   ({ylabel})" if title else ylabel, fill="black")
    if hline is not None:
        _, Y = px(x0, hline[0])
        for X in range(left, w - right, 10):
            d.line([X, Y, min(X + 5, w - right), Y], fill=(90, 90, 90))
        d.text((w - right - 6 * len(hline[1]) - 4, Y - 14), hline[1], fill=(90, 90, 90))
    for i, (label, s) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        xy = [px(x, y) for x, y in s]
        if len(xy) > 1:
            d.line(xy, fill=colour, width=2)
        for X, Y in xy:
            d.ellipse([X - 2, Y - 2, X + 2, Y + 2], fill=colour)
        d.text((w - right - 260, top + 6 + 14 * i), f"- {label}", fill=colour)
    return img
