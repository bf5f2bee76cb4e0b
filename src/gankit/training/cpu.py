"""CPU threads that hold up when other programs share the machine.

The default (all cores) collapsed beside a CPU-bound neighbour (157 against 1,500 images/s for a
small run, in the issue; 1,145 against 5,442 here, `benchmarks/threads_under_load.py`): OpenMP's
worker threads spin while they wait for each other at the end of every parallel region, and with a
core taken by the neighbour the thread they wait for is often descheduled. So `train.threads=0`
takes the cores that are idle when the run starts (at least one). Asking OpenMP to wait passively
(OMP_WAIT_POLICY=PASSIVE) was measured too and not kept: alone on the machine it made two threads
2.4x slower on a small model (every region then wakes a sleeping thread). A neighbour that starts
after the run does still slows it: set train.threads=1, or OMP_WAIT_POLICY=PASSIVE yourself.
"""
from __future__ import annotations

import os
import time


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
