"""Atomic checkpoints: write to a temporary file, fsync, rename, fsync the folder.

Files hold state dicts and plain Python values only and are always read with
`weights_only=True`, so a checkpoint can never run code.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from .console import warn
from .errors import CheckpointError
from .paths import atomic_write
from .runfolder import RunFolder

NAME = re.compile(r"^ckpt_(\d{8})\.pt$")  # temporary files never match this


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to `path` so that a crash leaves either the old file or the new one."""
    atomic_write(path, lambda f: torch.save(obj, f))


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"ckpt_{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files, newest (highest step) first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def remove_stale_temporaries(folder: Path) -> int:
    """Delete half-written `.ckpt_*.tmp` files left by a killed process; returns how many."""
    if not folder.is_dir():
        return 0
    n = 0
    for p in folder.glob(".ckpt_*.tmp"):
        try:
            p.unlink()
            n += 1
        except OSError:
            pass
    return n


def save_checkpoint(state: dict[str, Any], folder: Path, step: int, keep: int) -> Path:
    """Write atomically, then prune to the newest `keep` (only after the write succeeded)."""
    path = checkpoint_path(folder, step)
    atomic_save(state, path)
    for old in list_checkpoints(folder)[max(keep, 2):]:
        try:
            old.unlink()
        except OSError:
            pass
    return path


def _what_file(path: Path) -> str | None:
    """What a file that is not a torch checkpoint looks like, from its first bytes (None: maybe one)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):  # torch's zip format, or its legacy pickle
        return None
    kinds = {b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image", b"GIF8": "a GIF image", b"BM": "a BMP image",
             b"\x93NUMPY": "a NumPy array", b"\x1f\x8b": "a gzip file", b"%PDF": "a PDF document"}
    for magic, kind in kinds.items():
        if head.startswith(magic):
            return kind
    if not head:
        return "an empty file"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    try:
        if b"\0" not in head:
            head.decode("utf-8")
            return "a text file"
    except UnicodeDecodeError:
        pass
    return "binary data that is not a PyTorch file"


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint; any failure is a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if (kind := _what_file(path)) is not None:
        raise CheckpointError(f"{path}: not a gankit checkpoint ({kind}); give a run folder or a checkpoints/ckpt_*.pt file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling errors come in many types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            first = "it holds Python objects other than tensors and plain values, refused for safety"
        elif "central directory" in first or "zip archive" in first or isinstance(e, EOFError):
            first = "truncated or damaged: the file is incomplete"
        raise CheckpointError(f"{path}: not a readable gankit checkpoint ({first[:200]})") from None
    if not isinstance(state, dict) or "config" not in state or "G_ema" not in state:
        raise CheckpointError(f"{path}: not a gankit checkpoint (missing config or G_ema)")
    return state


def step_of(path: Path) -> int:
    """The step a checkpoint file holds, from its name."""
    m = NAME.match(path.name)
    if m is None:
        raise CheckpointError(f"{path}: not a checkpoint file name (ckpt_XXXXXXXX.pt)")
    return int(m.group(1))


def latest_valid(folder: Path, before: int | None = None, oldest: bool = False) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads (saved before step `before` when given; the oldest that loads with
    `oldest`); broken ones are skipped with a one-line warning."""
    found = list_checkpoints(folder)
    for p in reversed(found) if oldest else found:
        if before is not None and step_of(p) >= before:
            continue
        try:
            return p, load_checkpoint(p)
        except CheckpointError as e:
            warn(f"skipping {e}")
    return None


def load_target(target: str | Path) -> tuple[Path, dict[str, Any]]:
    """A run folder (its newest valid checkpoint) or a checkpoint file, loaded once."""
    p = Path(target)
    if p.is_dir():
        folder = RunFolder(p).checkpoints if RunFolder(p).checkpoints.is_dir() else p
        found = latest_valid(folder)
        if found is None:
            raise CheckpointError(f"{p}: no valid checkpoint found in {folder}")
        return found
    if not p.exists():
        raise CheckpointError(f"{p}: no such run folder or checkpoint file")
    return p, load_checkpoint(p)
