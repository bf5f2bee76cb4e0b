"""No lost work under hard kills, SIGTERM, unwritable folders and full disks."""
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.config import make_config
from gankit.errors import GankitError
from gankit.training.loop import train

from .conftest import tiny_overrides


def _train_cmd(out, *extra, **over):
    return [sys.executable, "-m", "gankit", "train", *tiny_overrides(**over), "--out", str(out), *extra]


def _wait_for(cond, timeout=120.0, poll=0.005):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError("timed out")
        time.sleep(poll)


def test_sigkill_during_checkpoint_writes_never_loses_the_newest_valid_checkpoint(tmp_path):
    """20 hard kills of a run that checkpoints every step: half the instant a checkpoint
    write starts, half at a random moment after it. After each kill every file with a
    checkpoint's name loads, and `--resume auto` continues from the newest."""
    out, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"
    data = tmp_path / "x.npz"  # an array file starts faster than the scikit-learn digits
    np.savez(data, images=np.random.default_rng(0).integers(0, 256, (64, 16, 16, 1), dtype=np.uint8))
    over = {"data.source": data, "model.width": 96, "train.steps": 10**6, "train.checkpoint_every": 1, "train.sample_every": 10**6,
            "train.log_every": 10**6, "train.threads": 1}
    rng = random.Random(0)
    newest, mid_write = 0, 0

    def writing_newer(stale):  # this process has begun writing a step not saved yet
        return any(int(t.name[6:14]) > newest for t in ckpts.glob(".ckpt_*.tmp") if t.name not in stale)

    for i in range(20):
        stale = {t.name for t in ckpts.glob(".ckpt_*.tmp")}
        proc = subprocess.Popen(_train_cmd(out, *(["--resume", "auto"] if i else []), **over),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _wait_for(lambda: writing_newer(stale) or proc.poll() is not None, poll=0.001)
        assert proc.poll() is None, proc.stderr.read()
        if i % 2:
            time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        proc.wait(timeout=60)
        proc.stderr.close()
        mid_write += bool(list(ckpts.glob(".ckpt_*.tmp")))
        files = list_checkpoints(ckpts)
        states = [load_checkpoint(f) for f in files]  # every file with a checkpoint's name is whole
        assert not files or len(files) >= 2 or states[0]["step"] == 1
        assert not states or states[0]["step"] >= newest
        newest = states[0]["step"] if states else 0
    assert mid_write >= 8, f"only {mid_write} of 20 kills landed inside a checkpoint write"
    assert newest >= 5  # the runs made progress between kills
    r = subprocess.run(_train_cmd(out, "--resume", "auto", **{**over, "train.steps": newest + 2}), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"at step {newest}" in r.stderr
    assert load_checkpoint(list_checkpoints(ckpts)[0])["step"] == newest + 2
    assert not list(ckpts.glob(".ckpt_*.tmp"))  # half-written files of killed runs are cleaned up


def _states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("sig,name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")])
def test_stop_signal_saves_says_where_and_resume_is_bit_exact(tmp_path, sig, name):
    out = tmp_path / "run"
    over = {"train.steps": 10**6, "train.checkpoint_every": 10**6, "augment.policy": "color,translation",
            "augment.adaptive": "true"}
    proc = subprocess.Popen(_train_cmd(out, **over), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (out / "metrics.jsonl").exists() or proc.poll() is not None, poll=0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    k = load_checkpoint(list_checkpoints(out / "checkpoints")[0])["step"]
    assert k >= 2 and f"{name}: saved step {k}" in err and "--resume auto" in err, err
    n = k + 3
    r = subprocess.run(_train_cmd(out, "--resume", "auto", **{**over, "train.steps": n}), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and f"at step {k}" in r.stderr, r.stderr
    resumed = load_checkpoint(list_checkpoints(out / "checkpoints")[0])
    straight = train(make_config({}, tiny_overrides(**{**over, "train.steps": n})), tmp_path / "straight", quiet=True)
    assert resumed["step"] == straight.step == n
    for net in ("G", "D", "G_ema"):
        assert _states_equal(resumed[net], getattr(straight, net).state_dict()), net
    for opt in ("opt_g", "opt_d"):
        sa, sb = resumed[opt]["state"], getattr(straight, opt).state_dict()["state"]
        assert all(torch.equal(sa[i][m], sb[i][m]) for i in sa for m in ("exp_avg", "exp_avg_sq")), opt
    assert resumed["augment"]["p"] == straight.augment.p


def test_unwritable_output_folder_is_reported_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(GankitError, match="cannot write this folder"):
        train(make_config({}, tiny_overrides()), blocker / "run", quiet=True)
    r = subprocess.run(_train_cmd(blocker / "run"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "a_file" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_full_disk_is_reported_before_training(tmp_path, monkeypatch):
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr("gankit.paths.shutil.disk_usage", lambda p: real(p)._replace(free=1 << 20))
    with pytest.raises(GankitError, match="only 1 MiB free"):
        train(make_config({}, tiny_overrides()), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "metrics.jsonl").exists() and not list_checkpoints(tmp_path / "run" / "checkpoints")
