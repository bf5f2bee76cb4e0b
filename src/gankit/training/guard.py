"""Skipping a non-finite step without making the device wait: the finiteness guard."""
from __future__ import annotations

import torch

SYNC_FREE_DEVICES = {"cuda"}  # devices whose steps never wait for a value (tests add "cpu")


def defer_checks(device: torch.device) -> bool:
    """On a GPU, reading a value (is the loss finite?) makes the host wait for the device;
    there the finiteness checks stay on the device and are read once per log interval."""
    return device.type in SYNC_FREE_DEVICES


class FiniteGuard:
    """Skips an update whose loss or gradient norm is not finite.

    Eager (CPU): `ok` reads the check at once and the loop skips the step. Deferred (GPU):
    `ok` folds the check into a flag on the device and answers True; `step` hands the flag
    to fused Adam (its `found_inf`), which leaves weights and moments untouched when it is
    set; `flush` reads the counts once per log interval.
    """

    def __init__(self, device: torch.device):
        self.deferred = defer_checks(device)
        self.device = device
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.total = torch.zeros((), dtype=torch.long, device=device)  # deferred: bad steps since the last flush
        self.run = torch.zeros((), dtype=torch.long, device=device)  # deferred: bad steps in a row
        self.worst = torch.zeros((), dtype=torch.long, device=device)  # deferred: longest such run since the last flush

    def begin(self) -> None:
        if self.deferred:
            self.bad = torch.zeros((), dtype=torch.bool, device=self.device)

    def ok(self, *values: torch.Tensor) -> bool:
        fin = torch.stack([torch.isfinite(v).all() for v in values]).all()
        if not self.deferred:
            return bool(fin)
        self.bad = self.bad | ~fin
        return True

    def step(self, opt: torch.optim.Optimizer) -> None:
        if self.deferred:
            opt.found_inf = self.bad.float()
        opt.step()

    def good(self) -> torch.Tensor | int:
        """1 for a step that counted (a device tensor when deferred)."""
        return (~self.bad).long() if self.deferred else 1

    def masked(self, stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Deferred: a skipped step's statistics become 0 (and `good` is 0), so means stay finite."""
        if not self.deferred:
            return stats
        return {k: torch.where(self.bad, torch.zeros_like(v), v) for k, v in stats.items()}

    def end(self) -> None:
        if self.deferred:
            self.total += self.bad.long()
            self.run = (self.run + 1) * self.bad.long()
            self.worst = torch.maximum(self.worst, self.run)

    def flush(self) -> tuple[int, int]:
        """Deferred: (bad steps, longest run of them in a row) since the last flush; eager: (0, 0)."""
        if not self.deferred:
            return 0, 0
        total, worst = int(self.total), int(self.worst)
        self.total.zero_()
        self.worst.zero_()
        return total, worst
