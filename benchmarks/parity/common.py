"""What the parity harnesses share: importing a reference checkout, and their tables."""
from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import torch


def reference_path(description: str, what: str, marker: str) -> argparse.Namespace:
    """--ref PATH (a checkout of `what`, which must hold `marker`) and --seeds; the checkout's code importable."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--ref", type=Path, required=True, help=f"a checkout of {what}")
    ap.add_argument("--seeds", type=int, default=5)
    a = ap.parse_args()
    if not (a.ref / marker).is_file():
        raise SystemExit(f"--ref {a.ref}: no {marker} there (a checkout of {what} is expected)")
    importable(a.ref)
    torch.set_num_threads(2)
    return a


def importable(path: Path) -> None:
    """Put a reference checkout on sys.path, with stand-ins for what its utilities import but the
    networks never use here (requests for downloads; pkg_resources, gone from new setuptools, for
    reading torch's version)."""
    sys.path.insert(0, str(path))
    sys.modules.setdefault("requests", types.ModuleType("requests"))
    if "pkg_resources" not in sys.modules:
        from packaging.version import parse
        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def print_tables(title: str, seeds: int, stats: list[tuple[str, float, float]], same: list[tuple[str, float]]) -> None:
    print(f"## {title}\n")
    print(f"Start-up statistics, each network built by its own code (median of {seeds} seeds, +- half the range):\n")
    print("| statistic | value |\n|---|---|")
    for k, m, h in stats:
        print(f"| {k} | {m:.3f} +- {h:.3f} |")
    print("\nIdentical weights (max |difference| / max |reference|):\n")
    print("| compared | relative difference |\n|---|---|")
    for k, v in same:
        print(f"| {k} | {v:.2e} |")
