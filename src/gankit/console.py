"""What long commands tell the user: one-line notes on stderr, and progress that suits the output.

On a terminal, progress is a tqdm bar; when output goes to a file or a pipe, it is a plain line
now and then instead, so a log shows that work is under way.
"""
from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("gankit_quiet", default=False)


def is_quiet() -> bool:
    return _quiet.get()


@contextmanager
def quiet(on: bool = True) -> Iterator[None]:
    """Silence notes and progress inside the block (library use, `compare`'s trainings)."""
    token = _quiet.set(on or _quiet.get())
    try:
        yield
    finally:
        _quiet.reset(token)


def say(msg: str) -> None:
    """One line on stderr (kept clear of a progress bar that is showing)."""
    if not _quiet.get():
        tqdm.write(msg, file=sys.stderr)


def warn(msg: str) -> None:
    say(f"gankit: warning: {msg}")


def on_terminal() -> bool:
    return sys.stderr.isatty()


class Progress:
    """A tqdm bar on a terminal; otherwise a plain line at most every `every_s` seconds."""

    def __init__(self, total: int, what: str, unit: str = "it", every_s: float = 30.0):
        self.total, self.what, self.unit, self.every_s = total, what, unit, every_s
        self.n, self.t0 = 0, time.perf_counter()
        self.last = self.t0
        self.silent = _quiet.get()
        self.bar = None if self.silent or not on_terminal() else tqdm(total=total, desc=what, unit=unit, file=sys.stderr,
                                                                        dynamic_ncols=True, leave=False)

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.bar is not None:
            self.bar.update(k)
            return
        now = time.perf_counter()
        if not self.silent and now - self.last >= self.every_s and self.n < self.total:
            self.last = now
            rate = self.n / max(now - self.t0, 1e-9)
            left = (self.total - self.n) / max(rate, 1e-9)
            say(f"{self.what}: {self.n}/{self.total} {self.unit} ({rate:.1f}/s, about {left:.0f} s left)")

    def close(self) -> float:
        """Ends the bar; returns the seconds it ran."""
        if self.bar is not None:
            self.bar.close()
        return time.perf_counter() - self.t0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
