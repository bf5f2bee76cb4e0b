"""Choosing the device to run on; errors name the flag or key the user set."""
from __future__ import annotations

import torch

from .errors import GankitError


def pick_device(name: str, flag: str = "train.device") -> torch.device:
    """cpu, cuda, cuda:N or auto (cuda when torch sees one)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise GankitError(f"{flag}: unknown device {name!r}; use cpu, cuda or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"{flag}: cuda was asked for, but torch sees no CUDA device")
    if dev.type not in ("cpu", "cuda"):
        raise GankitError(f"{flag}: {name!r} is not supported; use cpu, cuda or auto")
    return dev
