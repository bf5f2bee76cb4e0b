"""Deliberately broken runs trigger their intended detector; healthy ones trigger none."""
import json

import pytest

from gankit.config import make_config
from gankit.errors import GankitError
from gankit.analysis.health import HealthMonitor, doctor
from gankit.training.loop import train

from .conftest import ROOT, tiny_overrides

QUIET_LOG = {"train.sample_every": 10**6, "train.checkpoint_every": 10**6, "train.threads": 2}


def _ring(**over):
    base = {"data.source": "ring8", "model.arch": "mlp", "model.width": 64, "model.depth": 2, "train.batch_size": 64,
            "train.log_every": 20, **QUIET_LOG}
    base.update(over)
    return [f"{k}={v}" for k, v in base.items()]


def _findings(run):
    p = run / "health.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def _names(run):
    return [f["name"] for f in _findings(run)]


def test_weak_unregularised_gan_on_ring8_is_flagged_as_mode_collapse(tmp_path):
    # 2-dimensional latent, plain non-saturating loss, no EMA, no packing: it visits 1-3 of the 8 modes
    train(make_config({}, _ring(**{"model.z_dim": 2, "loss.name": "ns", "train.steps": 1000, "train.lr_g": 1e-3, "train.lr_d": 1e-3,
                                   "train.ema_halflife": 0, "train.log_every": 50})), tmp_path, quiet=True)
    names = _names(tmp_path)
    assert names and names[0] == "mode_collapse", names
    f = _findings(tmp_path)[0]
    assert f["step"] <= 1000 and max(f["evidence"]["modes_visited"]) < 4 and f["suggestion"] == {"loss.r1": 1.0}


def test_d_learning_rate_ten_times_g_is_flagged_as_d_overpowering(tmp_path):
    train(make_config({}, tiny_overrides(**{"loss.name": "ns", "train.lr_d": 2e-4, "train.lr_g": 2e-5, "train.steps": 260,
                                            "train.log_every": 20, "model.width": 16, **QUIET_LOG})), tmp_path, quiet=True)
    names = _names(tmp_path)
    assert "d_overpowering" in names and "divergence" not in names, names
    f = next(x for x in _findings(tmp_path) if x["name"] == "d_overpowering")
    assert min(f["evidence"]["d_acc"]) >= 0.99 and f["suggestion"] == {"train.lr_d": 2e-4 / 4}


def test_absurd_learning_rate_is_flagged_as_divergence(tmp_path):
    train(make_config({}, _ring(**{"loss.name": "wgan", "model.sn_d": "false", "train.lr_g": 0.1, "train.lr_d": 0.1,
                                   "train.steps": 100, "train.log_every": 10})), tmp_path, quiet=True)
    names = _names(tmp_path)
    assert names and names[0] == "divergence", names
    assert _findings(tmp_path)[0]["step"] <= 100


def test_small_data_without_augmentation_is_flagged_as_d_overfitting(tmp_path):
    train(make_config({}, tiny_overrides(**{"data.limit": 100, "train.steps": 260, "train.log_every": 20, "model.width": 16,
                                            "train.lr_d": 1e-3, **QUIET_LOG})), tmp_path, quiet=True)
    names = _names(tmp_path)
    assert "d_overfitting" in names and "divergence" not in names, names
    f = next(x for x in _findings(tmp_path) if x["name"] == "d_overfitting")
    assert min(f["evidence"]["r_t"]) >= 0.9 and f["suggestion"]["augment.adaptive"] is True


def test_injected_nan_is_flagged_as_non_finite(tmp_path, monkeypatch):
    from .test_train import _NaNAfter

    monkeypatch.setattr("gankit.training.steps.LOSSES", _NaNAfter(12, 14))
    train(make_config({}, tiny_overrides(**{"train.steps": 20, "train.log_every": 2})), tmp_path, quiet=True)
    assert _names(tmp_path) == ["non_finite"]
    assert _findings(tmp_path)[0]["evidence"]["skipped_steps"] == 2


def test_metric_regression_after_the_best_evaluation():
    mon = HealthMonitor(2e-4, 2e-4, 0.0, 5000, total_steps=1000)
    fired = []
    for step, fid in zip(range(100, 800, 100), (60.0, 40.0, 30.0, 33.0, 37.0, 41.0, 44.0)):
        fired += mon.observe({"step": step, "images": step * 64, "eval_fid": fid})
    assert [f.name for f in fired] == ["metric_regression"]
    assert fired[0].evidence["best_step"] == 300 and fired[0].since == 300


def test_a_healthy_run_raises_nothing_and_doctor_says_so(tmp_path):
    from gankit.config import load_config

    train(load_config(ROOT / "configs" / "digits.yaml", ["train.steps=600", "train.log_every=25", "train.sample_every=600",
                                                         "train.checkpoint_every=600"]), tmp_path, quiet=True)
    assert _names(tmp_path) == []
    text, n = doctor(tmp_path)
    assert n == 0 and text.splitlines()[-1] == "verdict: healthy (no detector fired)"
    from gankit.cli import main

    assert main(["doctor", str(tmp_path)]) == 0 and main(["doctor", str(tmp_path / "nope")]) == 2


def test_divergence_rolls_back_applies_the_remedy_and_ends_healthy(tmp_path, monkeypatch):
    """A G loss that blows up for a stretch of steps (fault injection): the run restores the
    checkpoint saved before it, lowers both learning rates, and finishes without a finding."""
    from gankit.losses import LOSSES

    class Explode:
        relativistic = False

        def __init__(self):
            self.inner, self.calls = LOSSES.get("hinge"), 0
            self.d = self.inner.d

        def g(self, f):
            self.calls += 1
            out = self.inner.g(f)
            return out * 1e5 if 60 <= self.calls < 70 else out

        def get(self, name):
            return self

    monkeypatch.setattr("gankit.training.steps.LOSSES", Explode())
    over = {"train.steps": 120, "train.log_every": 5, "train.checkpoint_every": 20, "train.sample_every": 10**6,
            "train.on_failure": "rollback"}
    cfg = make_config({}, tiny_overrides(**over))
    p = train(cfg, tmp_path, quiet=True)
    assert p.step == 120 and p.counters["rollbacks"] == 1
    assert p.cfg.train.lr_g == pytest.approx(cfg.train.lr_g / 4) and p.cfg.train.lr_d == pytest.approx(cfg.train.lr_d / 4)
    f = _findings(tmp_path)
    assert [x["name"] for x in f] == ["divergence"] and f[0]["action"].startswith("rolled back to step 40")  # the step-60 checkpoint already holds a blown-up step
    assert "lr_g: 5.0e-05" in (tmp_path / "config.yaml").read_text()  # a resume keeps the remedy
    text, _ = doctor(tmp_path)
    assert text.splitlines()[-1].startswith("verdict: recovered (1 rollback(s) after divergence)")


def test_on_failure_stop_stops_with_the_finding(tmp_path):
    with pytest.raises(GankitError, match="divergence"):
        train(make_config({}, _ring(**{"loss.name": "wgan", "model.sn_d": "false", "train.lr_g": 0.1, "train.lr_d": 0.1,
                                       "train.steps": 100, "train.log_every": 10, "train.on_failure": "stop"})), tmp_path, quiet=True)
    assert _findings(tmp_path)[0]["action"] == "stopped the run"


def test_doctors_verdict_names_the_same_step_as_its_finding(tmp_path):
    with pytest.raises(GankitError, match="divergence"):
        train(make_config({}, _ring(**{"loss.name": "wgan", "model.sn_d": "false", "train.lr_g": 0.1, "train.lr_d": 0.1,
                                       "train.steps": 100, "train.log_every": 10, "train.on_failure": "stop"})), tmp_path, quiet=True)
    f = _findings(tmp_path)[0]
    text, _ = doctor(tmp_path)
    where = f"at step {f['step']} (evidence since step {f['since']})"
    assert f"[error] divergence {where}" in text
    assert text.splitlines()[-1].startswith(f"verdict: unhealthy: divergence {where}; try ")


HEALTHY = sorted((ROOT / "tests" / "data" / "healthy_runs").glob("*/metrics.jsonl"))


@pytest.mark.parametrize("metrics", HEALTHY, ids=[p.parent.name for p in HEALTHY])
def test_full_runs_of_shipped_presets_raise_no_false_alarm(metrics):
    """The metrics.jsonl and config.yaml of complete runs of shipped presets (recorded on
    this machine, see the folder's README), replayed through the detectors."""
    text, n = doctor(metrics.parent)
    assert n == 0, text


def test_recorded_healthy_runs_are_present():
    assert len(HEALTHY) >= 3, "tests/data/healthy_runs should hold full runs of several presets"


def test_a_time_budget_sets_when_slow_problems_are_judged():
    from gankit.analysis.health import JUDGE_MIN_STEPS, judged_from

    rec = {"step": 1000, "seconds": 600.0}  # 1,000 steps in 10 minutes
    assert judged_from(200_000, 0.0, rec) == 50_000  # no budget: a quarter of train.steps
    assert judged_from(200_000, 20.0, rec) == 500  # 20 minutes at this pace: 2,000 steps, judged from 500
    assert judged_from(1_000, 20.0, rec) == 250  # train.steps ends it first
    assert judged_from(200_000, 20.0, {"step": 10, "seconds": 600.0}) == JUDGE_MIN_STEPS
