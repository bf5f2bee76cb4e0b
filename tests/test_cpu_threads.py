"""Threads that hold up beside other programs (`gankit.training.cpu`): train.threads=0 takes the cores idle
at the start. Speed itself: benchmarks/threads_under_load.py."""
import subprocess
import sys
import time

import torch

from gankit.config import make_config
from gankit.training.cpu import auto_threads, cores, idle_cores
from gankit.training.loop import train

from .conftest import tiny_overrides


def test_a_busy_core_is_not_counted():
    if cores() < 2:
        return
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        idle = idle_cores(0.5)
        assert idle is not None and idle <= cores() - 0.5
        assert 1 <= auto_threads() <= cores() - 1
    finally:
        burner.kill()
        burner.wait()


def test_threads_zero_takes_the_idle_cores_and_a_number_is_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("gankit.training.loop.auto_threads", lambda: 1)
    before = torch.get_num_threads()
    try:
        train(make_config({}, tiny_overrides(**{"train.threads": 0})), tmp_path / "a")
        assert "device cpu, 1 threads" in capsys.readouterr().err
        train(make_config({}, tiny_overrides(**{"train.threads": 2})), tmp_path / "b")
        assert "device cpu, 2 threads" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
