"""CPU threads that hold up when other programs share the machine.

Two causes made the default (all cores) collapse beside a CPU-bound neighbour (157 against 1,500
images/s for a small run; `benchmarks/threads_under_load.py`): OpenMP's worker threads spin while
they wait for each other, burning the time slices the neighbour needs and waiting on a thread the
kernel has descheduled; and a core that is busy is no help. So gankit asks OpenMP to wait
passively (`OMP_WAIT_POLICY=PASSIVE`, before torch is first imported, unless the user set it), and
`train.threads=0` takes the cores that are idle when the run starts (at least one).
"""
from __future__ import annotations

import os
import sys
import time


def prefer_passive_waits() -> None:
    """OpenMP threads sleep instead of spinning while they wait: set before torch loads its OpenMP
    runtime (no effect once torch is imported, or when OMP_WAIT_POLICY is already set)."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def idle_cores(window: float = 0.25) -> float | None:
    """How many cores other programs leave idle, from /proc/stat over `window` seconds (None where
    it cannot be read)."""
    def snapshot() -> tuple[int, int]:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v[:8])  # idle + iowait, all but guest time (counted in user already)

    try:
        idle0, total0 = snapshot()
        time.sleep(window)
        idle1, total1 = snapshot()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (os.cpu_count() or 1) * (idle1 - idle0) / (total1 - total0)


def auto_threads() -> int:
    """Threads for `train.threads=0`: the cores this process may use that are idle now, at least one."""
    n = cores()
    idle = idle_cores()
    return n if idle is None else max(1, min(n, int(idle + 0.5)))
