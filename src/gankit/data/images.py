"""Decoding and normalising single images with Pillow: any mode in, uint8 L or RGB out."""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from ..errors import DataError

# Truncated files must fail, never be padded with grey; the decompression-bomb guard stays on.
ImageFile.LOAD_TRUNCATED_IMAGES = False

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Integer or float pixel arrays (8, 16, 32 bit) to uint8."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    a = arr.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError("non-finite pixel values")
    hi = a.max() if a.size else 0
    if np.issubdtype(arr.dtype, np.floating) and hi <= 1.0:
        a = a * 255.0
    elif hi > 255:
        a = a * (255.0 / 65535.0)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def normalise_mode(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 'L' (greyscale sources) or 'RGB' (colour ones); alpha goes on white."""
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode in ("LA", "La"):
        return _composite_on_white(img).convert("L")
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
        return _composite_on_white(img)
    if mode in GREY_MODES:  # 16/32-bit integer and float greyscale
        return Image.fromarray(_to_uint8(np.asarray(img)), mode="L")
    return img.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV


def resize_crop(img: Image.Image, size: int | tuple[int, int]) -> Image.Image:
    """Scale (aspect kept) until the image covers `size` (a side, or (height, width)), then centre-crop to it."""
    th, tw = (size, size) if isinstance(size, int) else size
    w, h = img.size
    if (w, h) == (tw, th):
        return img
    s = max(tw / w, th / h)
    nw, nh = max(tw, round(w * s)), max(th, round(h * s))
    img = img.resize((nw, nh), Image.Resampling.LANCZOS if s < 1 else Image.Resampling.BICUBIC)
    left, top = (nw - tw) // 2, (nh - th) // 2
    return img.crop((left, top, left + tw, top + th))


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Any failure to open or decode `path` becomes one DataError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: image too large (decompression-bomb guard); remove it or use data.on_bad_image=skip") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for bad files
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: cannot decode image ({reason}); remove it or use data.on_bad_image=skip") from None


def decode_file(path: Path) -> Image.Image:
    """Open and fully decode one image file; any failure is a DataError naming the file."""
    with _reading(path), Image.open(path) as im:
        im.seek(0)  # first frame of a GIF or animated WebP
        im.load()  # Pillow opens lazily: decode now so truncation shows here
        return normalise_mode(im).copy()


def peek_file(path: Path) -> tuple[tuple[int, int], int]:
    """(width, height) and the channel count (1 or 3) that decoding will give, from the header only."""
    with _reading(path), Image.open(path) as im:
        return im.size, 1 if im.mode in GREY_MODES else 3


def decode_to_array(path: Path, resolution: int | tuple[int, int] | None, channels: int) -> np.ndarray:
    """One file straight to uint8 [C, H, W] at the final size: only this image is ever held at full size.
    JPEGs larger than twice the target are decoded at a reduced scale first (Pillow's draft mode)."""
    with _reading(path), Image.open(path) as im:
        im.seek(0)
        if resolution and im.format == "JPEG":
            th, tw = (resolution, resolution) if isinstance(resolution, int) else resolution
            s = 2 * max(tw / im.size[0], th / im.size[1])
            if s < 0.5:
                im.draft(None, (math.ceil(im.size[0] * s), math.ceil(im.size[1] * s)))
        im.load()
        img = normalise_mode(im)
        if resolution:
            img = resize_crop(img, resolution)
        return to_array(img, channels)


def to_array(img: Image.Image, channels: int) -> np.ndarray:
    """L or RGB image to uint8 [C, H, W] with the requested channel count."""
    if channels == 1 and img.mode != "L":
        img = img.convert("L")
    elif channels == 3 and img.mode != "RGB":
        img = img.convert("RGB")
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def find_images(paths: list[str]) -> list[tuple[Path, Path]]:
    """(file, name relative to what was given) for each image file given or found in a given folder."""
    found: list[tuple[Path, Path]] = []
    for given in paths:
        p = Path(given).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTS)
            if not files:
                raise DataError(f"{p}: no images found (looked for {', '.join(sorted(IMAGE_EXTS))}, recursively)")
            found += [(f, f.relative_to(p)) for f in files]
        elif p.is_file():
            found.append((p, Path(p.name)))
        else:
            raise DataError(f"{p}: no such file or folder")
    return found
