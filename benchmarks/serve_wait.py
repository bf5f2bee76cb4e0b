"""Seconds from `gankit serve RUN` to its first answer, and to the sampler page.

    .venv/bin/python benchmarks/serve_wait.py RUN [--repeats 3] [--src PATH/TO/OTHER/src]

Starts `python -m gankit serve RUN --port P` (with --src, another checkout's gankit, e.g. an
older commit's worktree, for a before/after), polls http://127.0.0.1:P/ until it answers, then
/sampler/ until it serves the page rather than "preparing the sampler". The run's sampler export
is removed before each repeat so that every start exports it. Median of the repeats.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_answer(url: str, t0: float, want=lambda body: True, limit: float = 600) -> float:
    while time.perf_counter() - t0 < limit:
        try:
            body = urllib.request.urlopen(url, timeout=5).read().decode(errors="replace")
            if want(body):
                return time.perf_counter() - t0
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url}: no answer in {limit} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--src", type=Path, default=None, help="another checkout's src/ to run instead")
    a = ap.parse_args()
    env = dict(os.environ)
    if a.src:
        env["PYTHONPATH"] = str(a.src.resolve())
    report, sampler = [], []
    for _ in range(a.repeats):
        shutil.rmtree(a.run / "sampler", ignore_errors=True)
        port = free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "gankit", "serve", str(a.run), "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            report.append(first_answer(f"http://127.0.0.1:{port}/", t0))
            sampler.append(first_answer(f"http://127.0.0.1:{port}/sampler/", t0, lambda b: "preparing the sampler" not in b))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"{a.src or 'this checkout'}: first answer {statistics.median(report):.2f} s, sampler page {statistics.median(sampler):.2f} s "
          f"(medians of {a.repeats}: {', '.join(f'{x:.2f}' for x in report)} / {', '.join(f'{x:.2f}' for x in sampler)})")


if __name__ == "__main__":
    main()
