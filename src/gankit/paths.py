"""Where gankit writes: its cache folder, and checks that an output can be written before any work."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .errors import GankitError


def cache_dir() -> Path:
    """$GANKIT_CACHE, else ~/.cache/gankit: decoded folders, real-data features, classifiers."""
    return Path(os.environ.get("GANKIT_CACHE", Path.home() / ".cache" / "gankit"))


def check_writable(out: Path, need_bytes: int = 0, flag: str | None = None) -> None:
    """Fail before any work when folder `out` cannot be made and written or the disk is too full."""
    name = f"{flag}: {out}" if flag else str(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".gankit-write-test.", dir=out)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise GankitError(f"{name}: cannot write this folder ({e.strerror or e})") from None
    free = shutil.disk_usage(out).free
    if free < need_bytes:
        raise GankitError(f"{name}: only {free / 2**20:.0f} MiB free, this needs about {need_bytes / 2**20:.0f} MiB")


def check_output_file(path: Path, flag: str = "--out") -> None:
    """Fail before any work when file `path` could not be written (its folder is made if missing)."""
    if path.is_dir():
        raise GankitError(f"{flag}: {path} is a folder; name a file")
    check_writable(path.parent, flag=flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise GankitError(f"{flag}: {path}: cannot overwrite this file (read-only)")


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks (weights files, the Inception network)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """`write(file)` into a temporary file beside `path`, fsync, rename it over `path`, fsync the folder:
    readers never see half a file, and a crash leaves either the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def write_atomic(path: Path, text: str) -> Path:
    """`text` to `path`, atomically (`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(text.encode()))
