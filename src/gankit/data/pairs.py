"""Paired data for translation (`data.pairs`): an input image and its target, one pair per row.

- `folders`: data.source holds A/ and B/ whose image files match by name (any extension);
- `ab`: each image holds A (left half) and B (right half) side by side, as pix2pix ships its data;
- `grey` / `edges`: any image source; the input is made from each image (its luminance, or an edge
  map) and the image itself is the target: paired tasks whose truth is known, from any data.

Pairs are decoded the same way the generation data are (`data.resolution`, a side or [H, W]: scaled
to cover it, centre crop; `data.channels` for the target); A and B of a pair get the same resize and crop.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import DataConfig
from ..errors import DataError
from .images import IMAGE_EXTS, decode_file, resize_crop, to_array

SHOW = 3


def _shown(names: list[str]) -> str:
    return ", ".join(names[:SHOW]) + (f" and {len(names) - SHOW} more" if len(names) > SHOW else "")


def luminance(x: np.ndarray) -> np.ndarray:
    """uint8 [N, 3, H, W] -> [N, 1, H, W]: ITU-R 601 luma, as Pillow's convert("L")."""
    if x.shape[1] == 1:
        return x
    y = (x[:, 0].astype(np.int32) * 19595 + x[:, 1].astype(np.int32) * 38470 + x[:, 2].astype(np.int32) * 7471 + 0x8000) >> 16
    return y.astype(np.uint8)[:, None]


def edge_map(x: np.ndarray) -> np.ndarray:
    """uint8 [N, C, H, W] -> [N, 1, H, W]: dark lines where the luminance changes (Sobel magnitude,
    scaled per image so its 98th percentile is full black), on white."""
    g = luminance(x)[:, 0].astype(np.float32)
    p = np.pad(g, ((0, 0), (1, 1), (1, 1)), mode="edge")
    gx = (p[:, :-2, 2:] + 2 * p[:, 1:-1, 2:] + p[:, 2:, 2:]) - (p[:, :-2, :-2] + 2 * p[:, 1:-1, :-2] + p[:, 2:, :-2])
    gy = (p[:, 2:, :-2] + 2 * p[:, 2:, 1:-1] + p[:, 2:, 2:]) - (p[:, :-2, :-2] + 2 * p[:, :-2, 1:-1] + p[:, :-2, 2:])
    mag = np.hypot(gx, gy)
    top = np.maximum(np.percentile(mag.reshape(len(mag), -1), 98, axis=1), 1e-6)[:, None, None]
    return (255 - np.clip(mag / top, 0, 1) * 255).round().astype(np.uint8)[:, None]


def derive_inputs(targets: np.ndarray, how: str) -> np.ndarray:
    """The inputs of a derived pairing (`grey`, `edges`) from the target images."""
    return luminance(targets) if how == "grey" else edge_map(targets)


def _image_files(folder: Path) -> dict[str, Path]:
    files = [Path(d) / f for d, _, names in os.walk(folder, followlinks=True) for f in names]
    out: dict[str, Path] = {}
    for f in sorted(files):
        if f.suffix.lower() in IMAGE_EXTS:
            out.setdefault(str(f.relative_to(folder).with_suffix("")), f)
    return out


def match_folders(root: Path) -> list[tuple[Path, Path]]:
    """(A file, B file) pairs from root/A and root/B matched by name; a mismatch names the culprits."""
    for side in ("A", "B"):
        if not (root / side).is_dir():
            raise DataError(f"{root}: data.pairs=folders needs the subfolders A/ and B/ (inputs and targets, matching file names); {side}/ is missing")
    a, b = _image_files(root / "A"), _image_files(root / "B")
    for side, files in (("A", a), ("B", b)):
        if not files:
            raise DataError(f"{root / side}: no images found (looked for {', '.join(sorted(IMAGE_EXTS))}, recursively)")
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        parts = [f"{len(only_a)} in A/ without a partner in B/ ({_shown(only_a)})" if only_a else "",
                 f"{len(only_b)} in B/ without a partner in A/ ({_shown(only_b)})" if only_b else ""]
        raise DataError(f"{root}: the names in A/ and B/ do not match: " + "; ".join(p for p in parts if p))
    return [(a[k], b[k]) for k in sorted(a)]


def _fit(img: Image.Image, size: tuple[int, int] | None, channels: int) -> np.ndarray:
    return to_array(resize_crop(img, size) if size else img, channels)


def _channels(img: Image.Image) -> int:
    return 1 if img.mode == "L" else 3


def read_pairs(root: Path, cfg: DataConfig, check_size) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(inputs, targets, the pairs skipped) as uint8 [N, C, H, W] from paired files (`folders` or `ab`); a
    file that cannot be decoded stops the load naming it, or with data.on_bad_image=skip drops its pair.
    `check_size(n, in_channels, shape)` runs after listing and the first pair's header, before the rest is decoded."""
    if cfg.pairs == "folders":
        if not root.is_dir():
            raise DataError(f"{root}: data.pairs=folders needs a folder holding A/ and B/")
        files = match_folders(root)
    else:
        found = _image_files(root) if root.is_dir() else ({root.stem: root} if root.suffix.lower() in IMAGE_EXTS else {})
        if not found:
            raise DataError(f"{root}: no images found for data.pairs=ab (looked for {', '.join(sorted(IMAGE_EXTS))})")
        files = [(f, f) for _, f in sorted(found.items())]
    if cfg.limit is not None and cfg.limit < len(files):
        keep = np.sort(np.random.default_rng(cfg.seed).permutation(len(files))[: cfg.limit])
        files = [files[i] for i in keep]
    xs, ys = [], []
    skipped: list[str] = []
    for fa, fb in files:
        try:
            decoded = (decode_file(fa), decode_file(fb)) if cfg.pairs == "folders" else (decode_file(fa),)
        except DataError:  # a file that cannot be decoded: its whole pair is skipped, or the run stops naming it
            if cfg.on_bad_image != "skip":
                raise
            skipped.append(str(fa) if fa == fb else f"{fa} / {fb}")
            continue
        if cfg.pairs == "folders":
            a, b = decoded
            if a.size != b.size:
                raise DataError(f"{fa} is {a.size[0]}x{a.size[1]} but its partner {fb} is {b.size[0]}x{b.size[1]}: the two images of a pair must be the same size")
        else:
            ab = decoded[0]
            w, h = ab.size
            if w % 2:
                raise DataError(f"{fa}: {w}x{h} is not two images side by side (an odd width); data.pairs=ab expects A|B of equal widths")
            a, b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))
        if cfg.direction == "BtoA":
            a, b = b, a
        if not xs:
            ca, cb = _channels(a), cfg.channels or _channels(b)
            shape = (cb, *(cfg.size or (b.size[1], b.size[0])))
            check_size(len(files), ca, shape)
        x, y = _fit(a, cfg.size, ca), _fit(b, cfg.size, cb)
        if y.shape[1:] != shape[1:]:
            raise DataError(f"{fb}: {y.shape[2]}x{y.shape[1]} differs from the first pair's {shape[2]}x{shape[1]}; "
                            f"set data.resolution so that every pair is resized to one size")
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DataError(f"{root}: none of its {len(files)} pair(s) could be decoded (first: {skipped[0]})")
    return np.stack(xs), np.stack(ys), skipped
