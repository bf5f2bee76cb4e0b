"""Image folders at any scale: list, choose, check, then decode each file once into the final array.

Memory holds the final uint8 array and the few images being decoded, never the originals.
`data.limit` chooses from the file list, so unchosen files are never opened. The decoded array
is cached as a `.npy` under the gankit cache, keyed by the folder's file list, sizes and
modification times and by the resolution and channels; it is written while decoding and
then memory-mapped, so data larger than memory is read batch by batch, and a second run on
the same folder starts in seconds. Large folders are decoded by worker processes (one per
core), which write straight into that file.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..console import Progress, say
from ..errors import DataError
from ..paths import cache_dir
from .images import IMAGE_EXTS, decode_to_array, peek_file

CACHE_FORMAT = "folder-v1"  # bump when decoding changes what a cached array holds
SHOW = 3  # file names shown in a note


@dataclass
class DataProbe:
    """What a data source will give, found without decoding or resizing a single image."""

    kind: str  # "image" | "points" | "pairs"
    shape: tuple[int, ...]  # one example (a pair's target) after data.resolution / data.channels
    size: int  # examples (a folder: image files chosen, before any is skipped)
    num_classes: int
    label_note: str = ""  # why there are no class labels, when there are none
    in_channels: int = 0  # pairs: the input's channels


@dataclass
class Listing:
    root: Path
    files: list[Path]
    labels: list[int] | None
    class_names: list[str]
    ignored: list[str]  # files that are not images, relative to root
    label_note: str


@dataclass
class FolderData:
    x: np.ndarray  # uint8 [N, C, H, W], memory-mapped when cached
    labels: np.ndarray | None
    class_names: list[str]
    skipped: list[str] = field(default_factory=list)  # files that could not be decoded
    fingerprint: str = ""
    notes: list[str] = field(default_factory=list)
    label_note: str = ""


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:SHOW])
    return shown + (f" and {len(items) - SHOW} more" if len(items) > SHOW else "")


def scan(root: Path) -> Listing:
    """Image files under `root` (sorted), and class labels from first-level subfolders when
    every image sits in one and there are two or more of them."""
    entries = [Path(d) / f for d, _, names in os.walk(root, followlinks=True) for f in names]
    files = sorted(p for p in entries if p.suffix.lower() in IMAGE_EXTS)
    ignored = sorted(str(p.relative_to(root)) for p in entries if p.suffix.lower() not in IMAGE_EXTS)
    if not files:
        raise DataError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_EXTS))}, recursively)")
    tops = [p.relative_to(root).parts for p in files]
    loose = sum(len(t) == 1 for t in tops)
    classes = sorted({t[0] for t in tops if len(t) >= 2})
    empty = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name not in classes and not d.name.startswith("."))
    note = ""
    if loose and not classes:
        note = f"the images lie directly in {root}, not in class subfolders"
    elif loose:
        note = f"{loose} image(s) lie directly in {root} beside its class subfolders ({_names(classes)}); move them into one"
    elif len(classes) == 1:
        note = f"{root} has a single class subfolder ({classes[0]}); a conditional model needs two or more"
    if note and empty:
        note += f"; class subfolder(s) {_names(empty)} hold no images"
    labels = None
    if not note:
        index = {n: i for i, n in enumerate(classes)}
        labels = [index[t[0]] for t in tops]
    return Listing(root, files, labels, classes if labels is not None else [], ignored, note)


def _choose(n: int, cfg: DataConfig) -> tuple[list[int], list[int]]:
    """(file indices to decode, spares that replace skipped ones): data.limit picks a seeded subset."""
    if cfg.limit is None or cfg.limit >= n:
        return list(range(n)), []
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    return sorted(perm[:cfg.limit]), perm[cfg.limit:]


def _workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _try(fn: Callable, *args):
    try:
        return fn(*args), None
    except DataError as e:
        return None, str(e)


def _final_shape(lst: Listing, chosen: list[int], cfg: DataConfig, bad: dict[int, str]) -> tuple[tuple[int, int, int], tuple[int, int] | None]:
    """((C, H, W), the (H, W) to resize to or None for the native size). Without data.resolution or data.channels it reads the chosen files' headers:
    colour if any file is colour; mixed sizes are resized to the smallest short side."""
    res, ch = cfg.size, cfg.channels
    if res is not None and ch is not None:
        return (ch, *res), res
    with ThreadPoolExecutor(_workers()) as pool:
        heads = list(pool.map(lambda i: _try(peek_file, lst.files[i]), chosen))
    sizes, chans = set(), set()
    for i, (head, err) in zip(chosen, heads):
        if err is not None:
            if cfg.on_bad_image != "skip":
                raise DataError(err)
            bad[i] = err
            continue
        sizes.add(head[0])
        chans.add(head[1])
    if not sizes:
        raise DataError(f"{lst.root}: all {len(chosen)} images were unreadable")
    ch = ch or max(chans)
    if res is None and len(sizes) > 1:
        side = min(min(s) for s in sizes)
        res = (side, side)
    if res is not None:
        return (ch, *res), res
    (w, h), = sizes
    return (ch, h, w), None


def _cache_key(lst: Listing, cfg: DataConfig, shape: tuple[int, int, int]) -> str:
    h = hashlib.sha256(f"{CACHE_FORMAT}|{lst.root.resolve()}|{shape}|{cfg.resolution}|{cfg.on_bad_image}|{cfg.limit}|{cfg.seed}".encode())
    for p in lst.files:
        st = p.stat()
        h.update(f"|{p.relative_to(lst.root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def fingerprint_of(x: np.ndarray, labels: np.ndarray | None, chunk_bytes: int = 64 << 20) -> str:
    """The content hash of a dataset, read in chunks (an array larger than memory is never copied whole)."""
    h = hashlib.sha256()
    h.update(str(tuple(x.shape)).encode())
    per = max(1, chunk_bytes // max(1, x[0].nbytes if len(x) else 1))
    for i in range(0, len(x), per):
        h.update(np.ascontiguousarray(x[i:i + per]).data)
    if labels is not None:
        h.update(np.ascontiguousarray(labels).data)
    return h.hexdigest()[:16]


def _load_cached(npy: Path, meta_path: Path) -> FolderData | None:
    try:
        meta = json.loads(meta_path.read_text())
        x = np.load(npy, mmap_mode="c")  # copy-on-write: writable for torch, the file is never changed
        if list(x.shape) != meta["shape"] or x.dtype != np.uint8:
            return None
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    labels = np.asarray(meta["labels"], dtype=np.int64) if meta["labels"] is not None else None
    return FolderData(x, labels, meta["class_names"], meta["skipped"], meta["fingerprint"])


PROCESS_MIN = 512  # from this many files, decode in worker processes (Python's own work per file holds the GIL)
CHUNK = 256  # files per task


def _decode_chunk(task: tuple) -> list[tuple[int, np.ndarray | None, str | None]]:
    """Worker: decode `items` (row, path); write rows into the .npy at `npy` when given, else return them."""
    items, res, shape, npy = task
    out = np.load(npy, mmap_mode="r+") if npy else None
    done = []
    for r, path in items:
        arr, err = _try(decode_to_array, path, res, shape[0])
        if err is None and arr.shape != shape:  # the header promised the others' size, the decoded image disagrees
            arr, err = None, f"{path}: decodes to {arr.shape[2]}x{arr.shape[1]}, the others to {shape[2]}x{shape[1]}"
        if err is None and out is not None:
            out[r], arr = arr, None
        done.append((r, arr, err))
    if out is not None:
        out.flush()
    return done


def _pool(n_files: int):
    """Worker processes where there is work enough and fork exists; else this process only."""
    import multiprocessing as mp

    workers = _workers()
    if n_files < PROCESS_MIN or workers < 2 or "fork" not in mp.get_all_start_methods():
        return None
    return mp.get_context("fork").Pool(workers)


def _decode_all(lst: Listing, chosen: list[int], spare: list[int], shape: tuple[int, int, int], res: int | None,
                out: np.ndarray, cfg: DataConfig, bad: dict[int, str]) -> list[int | None]:
    """Decode the chosen files into rows of `out` in order; a skipped file's row is refilled from
    the spares (data.limit) while there are any. Returns the file index each row holds (None: empty)."""
    row_file: list[int | None] = [None] * len(chosen)
    spare = list(spare)
    pending = []
    for r, i in enumerate(chosen):
        if i in bad and spare:  # known unreadable from its header
            i = spare.pop(0)
        if i not in bad:
            pending.append((r, i))
    npy = out.filename if isinstance(out, np.memmap) else None
    pool = _pool(len(pending))
    try:
        with Progress(len(chosen), f"decoding {lst.root}", "img") as bar:
            while pending:
                files_of = dict(pending)
                tasks = [([(r, lst.files[i]) for r, i in pending[k:k + CHUNK]], res, shape, npy if pool else None)
                         for k in range(0, len(pending), CHUNK)]
                pending = []
                results = pool.imap_unordered(_decode_chunk, tasks) if pool else map(_decode_chunk, tasks)
                for chunk in results:
                    for r, arr, err in chunk:
                        bar.update()
                        i = files_of[r]
                        if err is None:
                            if arr is not None:
                                out[r] = arr
                            row_file[r] = i
                            continue
                        if cfg.on_bad_image != "skip":
                            raise DataError(err)
                        bad[i] = err
                        if spare:
                            pending.append((r, spare.pop(0)))
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return row_file


def read_folder(root: Path, cfg: DataConfig, check: Callable[[DataProbe], None] | None = None) -> FolderData:
    lst = scan(root)
    chosen, spare = _choose(len(lst.files), cfg)
    bad: dict[int, str] = {}
    shape, res = _final_shape(lst, chosen, cfg, bad)
    if check is not None:  # the caller's cheap checks (architecture and resolution, ...) before any decoding
        check(DataProbe("image", shape, len(chosen), len(lst.class_names), lst.label_note))
    notes = []
    if lst.ignored:
        notes.append(f"{root}: ignored {len(lst.ignored)} file(s) that are not images ({_names(lst.ignored)})")

    folder = cache_dir() / "folders"
    key = _cache_key(lst, cfg, shape) if cfg.cache else ""
    npy, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
    found = _load_cached(npy, meta_path) if cfg.cache and npy.is_file() else None
    if found is not None:
        found.notes = notes + [f"{root}: {len(found.x)} images from the decoded cache {npy}"] + _skip_note(root, found.skipped)
        found.label_note = lst.label_note
        return found

    n, nbytes = len(chosen), len(chosen) * int(np.prod(shape))
    use_cache = cfg.cache and _room_for(folder, nbytes, notes)
    tmp = folder / f".{key}.{os.getpid()}.tmp.npy"
    out = np.lib.format.open_memmap(tmp, "w+", np.uint8, (n, *shape)) if use_cache else np.empty((n, *shape), np.uint8)
    say(f"{root}: decoding {n} images to {shape[0]}x{shape[1]}x{shape[2]}" + (" (cached for the next run)" if use_cache else ""))
    try:
        row_file = _decode_all(lst, chosen, spare, shape, res, out, cfg, bad)
        rows = [r for r, i in enumerate(row_file) if i is not None]
        if not rows:
            raise DataError(f"{root}: all {len(bad)} images were unreadable")
        if len(rows) < n:  # skipped files and no spares left: keep the filled rows, in order
            out = _compact(out, rows, folder / f".{key}.{os.getpid()}.c.tmp.npy" if use_cache else None)
        files = [row_file[r] for r in rows]
        labels = np.asarray([lst.labels[i] for i in files], dtype=np.int64) if lst.labels is not None else None
        skipped = sorted(str(lst.files[i].relative_to(root)) for i in bad)
        fp = fingerprint_of(out, labels)
        if use_cache:
            out.flush()
            written = Path(out.filename)
            del out
            meta_tmp = folder / f".{key}.{os.getpid()}.tmp.json"
            meta_tmp.write_text(json.dumps({"root": str(root), "shape": [len(rows), *shape], "class_names": lst.class_names,
                                            "skipped": skipped, "fingerprint": fp,
                                            "labels": labels.tolist() if labels is not None else None}))
            os.replace(written, npy)
            os.replace(meta_tmp, meta_path)
            out = np.load(npy, mmap_mode="c")
    finally:
        for t in folder.glob(f".{key}.{os.getpid()}.*") if use_cache else ():
            t.unlink(missing_ok=True)
    return FolderData(out, labels, lst.class_names, skipped, fp, notes + _skip_note(root, skipped), lst.label_note)


def _skip_note(root: Path, skipped: list[str]) -> list[str]:
    if not skipped:
        return []
    return [f"{root}: skipped {len(skipped)} unreadable image(s) (data.on_bad_image=skip): {_names(skipped)}"]


def _room_for(folder: Path, nbytes: int, notes: list[str]) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as e:
        notes.append(f"decoded images not cached: {folder} cannot be written ({e.strerror or e})")
        return False
    if free < nbytes + (256 << 20):
        notes.append(f"decoded images not cached: {folder} has {free >> 20} MiB free, the array needs {nbytes >> 20} MiB")
        return False
    return True


def _compact(out: np.ndarray, rows: list[int], path: Path | None, chunk: int = 1024) -> np.ndarray:
    """The rows `rows` of `out` as a new array: another memory-mapped file when `path` is given."""
    if path is None:
        return out[rows]
    new = np.lib.format.open_memmap(path, "w+", np.uint8, (len(rows), *out.shape[1:]))
    for k in range(0, len(rows), chunk):
        new[k:k + chunk] = out[rows[k:k + chunk]]
    old = Path(out.filename)
    del out
    old.unlink(missing_ok=True)
    return new
