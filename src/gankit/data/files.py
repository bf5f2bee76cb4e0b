"""Readers for data on disk: image folders, .npz/.npy arrays, IDX files, CSV of pixels.

Each returns (array, labels, skipped). Images come back as uint8 [N, C, H, W] at their
native size (resizing happens once, later); 2D points as float32 [N, 2]. Image folders
have their own reader (`folder.py`), which decodes straight to the final size.
"""
from __future__ import annotations

import gzip
import math
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError
from .images import IMAGE_EXTS, _composite_on_white, _to_uint8

Raw = tuple[np.ndarray, np.ndarray | None, int]


def _array_to_nchw(a: np.ndarray, name: str) -> np.ndarray:
    """uint8 or float arrays, NHWC / NCHW / NHW, to uint8 NCHW (RGBA composited on white)."""
    if a.dtype.kind not in "biuf":
        raise DataError(f"{name}: array of type {a.dtype} is not numeric pixel data")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(f"{name}: array holds NaN or infinite values")
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4:
        if a.shape[-1] in (1, 3, 4) and a.shape[1] not in (1, 3, 4):
            a = a.transpose(0, 3, 1, 2)
        elif a.shape[1] in (1, 3, 4):
            pass
        elif a.shape[-1] in (1, 3, 4):
            a = a.transpose(0, 3, 1, 2)
        else:
            raise DataError(f"{name}: cannot find the channel axis in shape {a.shape} (need 1, 3 or 4 channels)")
    else:
        raise DataError(f"{name}: expected images shaped [N,H,W], [N,H,W,C] or [N,C,H,W], got {a.shape}")
    if a.shape[0] == 0:
        raise DataError(f"{name}: the array holds no images")
    if a.dtype.kind == "f" and a.min() < 0:  # already in [-1, 1]
        a = (np.clip(a, -1, 1) + 1) * 127.5
        a = np.rint(a).astype(np.uint8)
    a = _to_uint8(a)
    if a.shape[1] == 4:
        rgba = a.transpose(0, 2, 3, 1)
        a = np.stack([np.asarray(_composite_on_white(Image.fromarray(x, "RGBA"))) for x in rgba]).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(a)


def read_array(path: Path) -> Raw:
    try:
        obj = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - numpy raises several types for junk
        raise DataError(f"{path}: cannot read array file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    labels = None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            keys = list(obj.keys())
            key = next((k for k in ("images", "x", "arr_0") if k in keys), None)
            if key is None:
                key = next((k for k in keys if k not in ("labels", "y")), None)
            if key is None:
                raise DataError(f"{path}: no image array inside (keys: {keys})")
            try:
                a = obj[key]
                lk = next((k for k in ("labels", "y") if k in keys), None)
                labels = obj[lk] if lk else None
            except Exception as e:  # noqa: BLE001
                raise DataError(f"{path}: cannot read array {key!r} ({e})") from None
    else:
        a = obj
    if a.ndim == 2 and a.shape[1] == 2:  # 2D points
        if not np.isfinite(a).all():
            raise DataError(f"{path}: points hold NaN or infinite values")
        return a.astype(np.float32), _check_labels(labels, len(a), path), 0
    a = _array_to_nchw(a, str(path))
    return a, _check_labels(labels, len(a), path), 0


def _check_labels(labels: np.ndarray | None, n: int, where: Path | str) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != n:
        raise DataError(f"{where}: {len(labels)} labels for {n} images")
    if labels.dtype.kind not in "iub" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        raise DataError(f"{where}: labels must be integers, got {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise DataError(f"{where}: labels must be >= 0, got {labels.min()}")
    return labels


def _open_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def _parse_idx(path: Path, want_dims: int) -> np.ndarray:
    buf = _open_bytes(path)
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] != 0x08:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number {buf[:4].hex()})")
    ndim = buf[3]
    if ndim != want_dims:
        raise DataError(f"{path}: IDX file has {ndim} dimensions, expected {want_dims}")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(f"{path}: IDX header is truncated")
    dims = [int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    count = math.prod(dims)
    if len(buf) - header != count:
        raise DataError(f"{path}: IDX data holds {len(buf) - header} bytes, the header promises {count} ({dims})")
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: Path) -> Raw:
    images = _parse_idx(path, 3)
    if images.shape[0] == 0:
        raise DataError(f"{path}: the IDX file holds no images")
    labels = None
    lab_path = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
    if lab_path != path and lab_path.exists():
        labels = _check_labels(_parse_idx(lab_path, 1), len(images), lab_path)
    return images[:, None].copy(), labels, 0


def read_csv(path: Path) -> Raw:
    try:
        text = _open_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{path}: the CSV file is empty")
    header = None
    first = lines[0].split(",")
    try:
        [float(v) for v in first]
    except ValueError:
        header = [h.strip().lower() for h in first]
        lines = lines[1:]
    ncols = len(first)
    for i, ln in enumerate(lines):
        if ln.count(",") != ncols - 1:
            raise DataError(f"{path}: line {i + 1 + (header is not None)} has {ln.count(',') + 1} columns, expected {ncols}")
    if not lines:
        raise DataError(f"{path}: the CSV file has a header but no rows")
    try:
        values = np.array(",".join(lines).split(","), dtype=np.float64).reshape(len(lines), ncols)
    except ValueError:
        bad = next(i for i, ln in enumerate(lines) if not _numeric(ln))
        raise DataError(f"{path}: line {bad + 1 + (header is not None)} holds a value that is not a number") from None
    if not np.isfinite(values).all():
        raise DataError(f"{path}: holds NaN or infinite values")
    label_col = None
    if header and "label" in header:
        label_col = header.index("label")
    elif not _is_square(ncols) and _is_square(ncols - 1):
        label_col = ncols - 1  # the mnist5k layout: pixels, then the label
    labels = None
    if label_col is not None:
        labels = _check_labels(values[:, label_col], len(values), path)
        values = np.delete(values, label_col, axis=1)
    n, p = values.shape
    side = math.isqrt(p)
    if side * side == p:
        imgs = values.reshape(n, 1, side, side)
    elif p % 3 == 0 and math.isqrt(p // 3) ** 2 == p // 3:
        side = math.isqrt(p // 3)
        imgs = values.reshape(n, side, side, 3).transpose(0, 3, 1, 2)
    else:
        raise DataError(f"{path}: {p} pixel columns do not form a square image (grey or RGB)")
    return _to_uint8(np.ascontiguousarray(imgs)), labels, 0


def _numeric(line: str) -> bool:
    try:
        [float(v) for v in line.split(",")]
        return True
    except ValueError:
        return False


def _is_square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n


def read_path(path: Path) -> Raw:
    """Dispatch on what the file is (folders are read by `folder.read_folder`)."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder, and not a built-in source (see `gankit datasets`)")
    name = path.name.lower()
    if name.endswith((".npz", ".npy")):
        return read_array(path)
    if "idx3-ubyte" in name:
        return read_idx(path)
    if name.endswith((".csv", ".csv.gz")):
        return read_csv(path)
    if path.suffix.lower() in IMAGE_EXTS:
        raise DataError(f"{path}: a single image is not a dataset; point data.source at its folder")
    raise DataError(f"{path}: unknown data format (expected a folder, .npz, .npy, *-images-idx3-ubyte[.gz] or .csv[.gz])")
