import json
import subprocess
import sys

import pytest
import torch

from gankit.checkpoint import list_checkpoints, load_checkpoint
from gankit.config import load_config, make_config
from gankit.errors import GankitError
from gankit.training.loop import train
from gankit.artefact.loader import load_generator
from gankit.artefact.sampling import generate

from .conftest import ROOT, tiny_overrides


def _equal_states(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_tiny_run_writes_the_run_folder(tmp_path):
    cfg = make_config({}, tiny_overrides())
    p = train(cfg, tmp_path, quiet=True)
    assert p.step == 6 and p.images == 6 * 16
    assert (tmp_path / "config.yaml").is_file()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4, 6]
    for key in ("images", "loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "seconds", "images_per_s"):
        assert key in lines[-1] and lines[-1][key] == lines[-1][key]  # present and not NaN
    assert sorted(f.name for f in (tmp_path / "samples").iterdir()) == ["real.png", "step_000003.png", "step_000006.png"]
    assert [c.name for c in list_checkpoints(tmp_path / "checkpoints")] == ["ckpt_00000006.pt", "ckpt_00000003.pt"]


def test_save_then_load_reproduces_g_ema_outputs(tmp_path):
    cfg = make_config({}, tiny_overrides(**{"model.conditional": "true"}))
    p = train(cfg, tmp_path, quiet=True)
    before, _ = generate(p.G_ema, 20, 8, 10, torch.device("cpu"), seed=3)
    lg = load_generator(tmp_path)
    after, _ = generate(lg.G, 20, 8, 10, torch.device("cpu"), seed=3)
    assert lg.step == 6 and torch.equal(before, after)


@pytest.mark.parametrize("extra", [{}, {"model.family": "vae", "vae.kl_warmup": 4}, {"loss.name": "wgan", "loss.gp": 1.0, "train.d_steps": 2}, {"augment.policy": "color,translation,cutout", "augment.adaptive": "true"}])
def test_resume_is_bit_exact(tmp_path, extra):
    straight = train(make_config({}, tiny_overrides(**extra)), tmp_path / "a", quiet=True)
    train(make_config({}, tiny_overrides(**extra, **{"train.steps": 3})), tmp_path / "b", quiet=True)
    resumed = train(make_config({}, tiny_overrides(**extra)), tmp_path / "b", resume="auto", quiet=True)
    assert resumed.step == straight.step == 6 and resumed.images == straight.images
    for name in ("G", "D", "G_ema"):
        assert _equal_states(getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()), name
    sa, sb = straight.opt_d.state_dict()["state"], resumed.opt_d.state_dict()["state"]
    assert all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)
    assert straight.augment.p == resumed.augment.p
    assert torch.equal(torch.randn(4, generator=straight.latent_gen), torch.randn(4, generator=resumed.latent_gen))
    assert torch.equal(straight.order.next(5), resumed.order.next(5))
    lines = [json.loads(x)["step"] for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert lines == [2, 3, 4, 6]  # the first leg logs its last step; nothing is duplicated


def test_refuses_to_overwrite_a_run(tmp_path):
    cfg = make_config({}, tiny_overrides(**{"train.steps": 3}))
    train(cfg, tmp_path, quiet=True)
    with pytest.raises(GankitError, match="--resume auto"):
        train(cfg, tmp_path, quiet=True)


def test_checkpoint_holds_the_full_state(tmp_path):
    train(make_config({}, tiny_overrides()), tmp_path, quiet=True)
    s = load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[0])
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng", "order", "augment", "config", "step", "images"):
        assert key in s
    assert s["config"]["train"]["steps"] == 6 and s["step"] == 6


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gankit", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_train_sample_and_errors(tmp_path):
    out = tmp_path / "run"
    r = _cli("train", *tiny_overrides(**{"model.conditional": "true"}), "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = _cli("sample", str(out), "--n", "12", "--out", str(tmp_path / "s.npz"), "--label", "3")
    assert r.returncode == 0, r.stderr
    import numpy as np

    z = np.load(tmp_path / "s.npz")
    assert z["images"].shape == (12, 16, 16, 1) and z["images"].dtype == np.uint8 and set(z["labels"].tolist()) == {3}
    assert _cli("sample", str(out), "--n", "4", "--out", str(tmp_path / "g.png")).returncode == 0
    assert _cli("sample", str(out), "--n", "3", "--out", str(tmp_path / "dir")).returncode == 0
    assert len(list((tmp_path / "dir").glob("*.png"))) == 3
    assert _cli("sample", str(out), "--interpolate", "2", "--n", "4", "--out", str(tmp_path / "i.gif")).returncode == 0
    from PIL import Image

    assert Image.open(tmp_path / "i.gif").n_frames == 24

    for bad, culprit in ((["train", "train.stepz=3"], "train.stepz"), (["train", str(tmp_path / "nope.yaml")], "nope.yaml"),
                         (["sample", str(tmp_path / "missing"), "--out", "x.png"], "missing")):
        r = _cli(*bad)
        assert r.returncode == 2 and culprit in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_dry_run_prints_resolved_config(tmp_path):
    r = _cli("train", str(ROOT / "configs" / "mnist_dcgan.yaml"), "train.steps=7", "--dry-run", "--out", str(tmp_path / "x"))
    assert r.returncode == 0 and "steps: 7" in r.stdout and not (tmp_path / "x").exists()


def test_points_run_and_sample(tmp_path):
    cfg = make_config({}, ["data.source=ring8", "model.arch=mlp", "model.width=16", "model.z_dim=4", "model.pac=2",
                           "train.steps=4", "train.batch_size=32", "train.sample_every=2", "train.log_every=2"])
    train(cfg, tmp_path, quiet=True)
    assert (tmp_path / "samples" / "step_000004.png").is_file()
    r = _cli("sample", str(tmp_path), "--n", "10", "--out", str(tmp_path / "p.npz"))
    import numpy as np

    assert r.returncode == 0 and np.load(tmp_path / "p.npz")["points"].shape == (10, 2)


class _NaNAfter:
    """A hinge loss whose D side turns NaN for calls in [start, stop)."""

    relativistic = False

    def __init__(self, start: int, stop: int):
        from gankit.losses import LOSSES

        self.inner, self.calls, self.start, self.stop = LOSSES.get("hinge"), 0, start, stop
        self.g = self.inner.g

    def d(self, r, f):
        self.calls += 1
        out = self.inner.d(r, f)
        return out * float("nan") if self.start <= self.calls < self.stop else out

    def get(self, name):
        return self


def test_non_finite_steps_are_skipped_then_stop_the_run(tmp_path, monkeypatch):
    fake = _NaNAfter(4, 10**9)
    monkeypatch.setattr("gankit.training.steps.LOSSES", fake)
    with pytest.raises(GankitError, match="non-finite"):
        train(make_config({}, tiny_overrides(**{"train.max_nonfinite": 3, "train.steps": 20})), tmp_path, quiet=True)
    s = load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[0])
    assert s["step"] == 3  # the last good checkpoint is intact


def test_non_finite_steps_roll_back_and_recover(tmp_path, monkeypatch):
    from gankit.training.duties import Duties

    fake = _NaNAfter(5, 8)  # three bad D steps, then healthy again
    monkeypatch.setattr("gankit.training.steps.LOSSES", fake)
    returned = []
    real = Duties.nonfinite_rollback
    monkeypatch.setattr(Duties, "nonfinite_rollback", lambda self, n: returned.append(real(self, n)) or returned[-1])
    cfg = make_config({}, tiny_overrides(**{"train.max_nonfinite": 3, "train.on_failure": "rollback", "train.steps": 9}))
    p = train(cfg, tmp_path, quiet=True)
    assert p.step == 9 and p.counters == {"nonfinite": 3, "rollbacks": 1}
    # the rollback is handed back to the loop: the restored step and the config it then trains with
    assert [(r.step, r.checkpoint.name) for r in returned] == [(3, "ckpt_00000003.pt")] and returned[0].cfg is p.cfg
    assert p.cfg.train.lr_d == pytest.approx(cfg.train.lr_d / 2)
    events = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if "event" in x]
    assert len(events) == 1 and events[0]["event"] == "rollback" and events[0]["step"] == 3
    on_disk = load_config(tmp_path / "config.yaml", [])  # a resume trains with the remedy, as the run did
    assert on_disk.train.lr_d == pytest.approx(p.cfg.train.lr_d) and on_disk.train.lr_g == pytest.approx(p.cfg.train.lr_g)


def test_non_finite_that_keeps_coming_back_stops_after_max_rollbacks(tmp_path, monkeypatch):
    monkeypatch.setattr("gankit.training.steps.LOSSES", _NaNAfter(5, 10**9))
    cfg = make_config({}, tiny_overrides(**{"train.max_nonfinite": 2, "train.on_failure": "rollback", "train.max_rollbacks": 2, "train.steps": 20}))
    with pytest.raises(GankitError, match="again after 2 rollbacks"):
        train(cfg, tmp_path, quiet=True)
    events = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if "event" in x]
    assert [e["lr_d"] for e in events] == pytest.approx([cfg.train.lr_d / 2, cfg.train.lr_d / 4])
    assert load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[0])["step"] == 3


def test_overrides_may_follow_options(tmp_path):
    r = _cli("train", str(ROOT / "configs" / "mnist_dcgan.yaml"), "--dry-run", "train.steps=9", "--out", str(tmp_path), "train.seed=4")
    assert r.returncode == 0, r.stderr
    assert "steps: 9" in r.stdout and "seed: 4" in r.stdout
    assert _cli("train", "--dry-run", "--bogus").returncode == 2


def test_lazy_r1_applies_the_penalty_every_kth_d_step(tmp_path, monkeypatch):
    import gankit.training.steps as steps
    calls, original = [], steps.r1_penalty

    def counting(D, real, y):
        calls.append(1)
        return original(D, real, y)

    monkeypatch.setattr(steps, "r1_penalty", counting)
    # 6 G steps x 2 D steps = 12 D steps; every 3rd one is penalised
    train(make_config({}, tiny_overrides(**{"loss.r1": 0.1, "loss.r1_every": 3, "train.d_steps": 2})), tmp_path, quiet=True)
    assert len(calls) == 4


def test_lazy_r1_is_weighted_k_times_in_the_d_step_it_joins(tmp_path, monkeypatch):
    """Lazy R1 joins every k-th D step at k times its weight, so k batches make k optimiser steps
    (StyleGAN2-ADA's separate regularisation step, and the learning-rate and beta2 rescaling that
    compensates for it, do not arise)."""
    import gankit.training.steps as steps
    added, original = [], steps.d_penalties
    monkeypatch.setattr(steps, "r1_penalty", lambda D, real, y: torch.tensor(2.0))
    monkeypatch.setattr(steps, "d_penalties", lambda *a: added.append(float(original(*a))) or added[-1])
    train(make_config({}, tiny_overrides(**{"loss.r1": 0.1, "loss.r1_every": 3, "train.d_steps": 2})), tmp_path, quiet=True)
    assert added == pytest.approx([0.6, 0, 0, 0.6, 0, 0, 0.6, 0, 0, 0.6, 0, 0])


def test_ema_batch_norm_recomputed_once_per_step(tmp_path, monkeypatch):
    """The grid and the checkpoint of one step share one recalibration of G_ema's BN statistics,
    and the checkpoint holds exactly those statistics."""
    from gankit.training import state as run_mod
    from gankit.config import make_config
    from gankit.training.loop import train
    from gankit.artefact.loader import load_generator
    from gankit.artefact.sampling import recalibrate_bn

    from .conftest import tiny_overrides

    calls = []
    real = run_mod.recalibrate_bn
    monkeypatch.setattr(run_mod, "recalibrate_bn", lambda *a, **k: calls.append(1) or real(*a, **k))
    train(make_config({}, tiny_overrides()), tmp_path, quiet=True)  # grid and checkpoint at steps 3 and 6
    assert len(calls) == 2
    lg = load_generator(tmp_path)
    saved = {k: v.clone() for k, v in lg.G.state_dict().items() if "running" in k}
    assert saved
    recalibrate_bn(lg.G, lg.spec.z_dim, lg.spec.num_classes, torch.device("cpu"))
    for k, v in lg.G.state_dict().items():
        if "running" in k:
            torch.testing.assert_close(v, saved[k])


def test_resume_on_other_data_says_how_the_data_differs(tmp_path):
    train(make_config({}, tiny_overrides(**{"train.steps": 3})), tmp_path, quiet=True)
    with pytest.raises(GankitError, match=r"was trained on other data \(digits, 1797 images 1x16x16, 10 classes against "
                                          r"digits, 500 images 1x16x16, 10 classes now\)"):
        train(make_config({}, tiny_overrides(**{"train.steps": 6, "data.limit": 500})), tmp_path, resume="auto", quiet=True)
