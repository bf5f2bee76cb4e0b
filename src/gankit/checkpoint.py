"""Atomic checkpoints: write to a temporary file, fsync, rename, fsync the folder.

Files hold state dicts and plain Python values only and are always read with
`weights_only=True`, so a checkpoint can never run code.
"""
from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError

NAME = re.compile(r"^ckpt_(\d{8})\.pt$")  # temporary files never match this


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to `path` so that a crash leaves either the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


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


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint; any failure is a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling errors come in many types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            first = "it holds Python objects other than tensors and plain values, refused for safety"
        raise CheckpointError(f"{path}: not a readable gankit checkpoint ({first[:200]})") from None
    if not isinstance(state, dict) or "config" not in state or "G_ema" not in state:
        raise CheckpointError(f"{path}: not a gankit checkpoint (missing config or G_ema)")
    return state


def latest_valid(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; broken ones are skipped with a warning."""
    for p in list_checkpoints(folder):
        try:
            return p, load_checkpoint(p)
        except CheckpointError as e:
            warnings.warn(f"skipping {e}", stacklevel=2)
    return None


def load_target(target: str | Path) -> tuple[Path, dict[str, Any]]:
    """A run folder (its newest valid checkpoint) or a checkpoint file, loaded once."""
    p = Path(target)
    if p.is_dir():
        folder = p / "checkpoints" if (p / "checkpoints").is_dir() else p
        found = latest_valid(folder)
        if found is None:
            raise CheckpointError(f"{p}: no valid checkpoint found in {folder}")
        return found
    if not p.exists():
        raise CheckpointError(f"{p}: no such run folder or checkpoint file")
    return p, load_checkpoint(p)
