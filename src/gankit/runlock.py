"""One writer per run folder: the training process holds an OS file lock on `RUN/.lock`.

The lock is `flock`-based, so the kernel releases it when the process ends in any way (SIGKILL
included): a stale lock file never blocks a later run. Readers (sample, eval, doctor, compare)
do not take it.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import GankitError
from .runfolder import RunFolder

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the folder is not guarded
    fcntl = None  # type: ignore[assignment]


class RunLock:
    def __init__(self, out: Path):
        self.path = RunFolder(out).lock
        self.fd: int | None = None
        self.made_folder = False

    def acquire(self) -> RunLock:
        if fcntl is None:
            return self
        try:
            self.made_folder = not self.path.parent.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise GankitError(f"{self.path.parent}: cannot write this folder ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise GankitError(f"{self.path.parent}: another trainer (pid {holder}) is training into this run folder; "
                              "wait for it to end, stop it, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        """Unlock; a run that wrote nothing (it failed before its first file) leaves no folder holding
        only `.lock` behind (the folder goes too when the lock made it)."""
        if self.fd is not None:
            try:
                if [p for p in self.path.parent.iterdir()] == [self.path]:
                    self.path.unlink()
                    if self.made_folder:
                        self.path.parent.rmdir()
            except OSError:
                pass
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def is_held(out: Path) -> bool:
    """Whether a live trainer holds `out` (for readers: a report says "running")."""
    path = RunFolder(out).lock
    if fcntl is None or not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)
