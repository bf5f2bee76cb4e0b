"""R3GAN's schedules: the values at the start, middle and end of the annealing, and a short run
whose optimisers, penalties and augmentation follow them."""
import json
import math

import pytest

from gankit.config import make_config
from gankit.errors import ConfigError
from gankit.training.schedule import anneal, values

from .conftest import tiny_overrides

R3 = {"train": {"lr_g": 2e-4, "lr_d": 2e-4, "betas_g": [0.0, 0.9], "betas_d": [0.0, 0.9]},
      "loss": {"name": "rpgan", "r1": 0.05, "r2": 0.05}, "augment": {"policy": "translation", "p": 0.0},
      "schedule": {"images": 1000, "lr": 0.25, "penalty": 0.1, "beta2": 0.99, "augment_p": 0.55}}


def test_values_follow_r3gans_cosine():
    cfg = make_config(R3)
    start, mid, end, after = (values(cfg, 0, i) for i in (0, 500, 1000, 5000))
    assert (start.lr_g, start.beta2_d, start.r1, start.augment_p) == (2e-4, 0.9, 0.05, 0.0)
    assert mid.lr_g == pytest.approx(2e-4 * (1 + 0.25) / 2) and mid.beta2_g == pytest.approx(0.945)
    assert mid.r2 == pytest.approx(0.05 * 0.55) and mid.augment_p == pytest.approx(0.275)
    for v in (end, after):
        assert (v.lr_d, v.beta2_g, v.r1, v.augment_p) == pytest.approx((5e-5, 0.99, 0.005, 0.55))
    assert anneal(1.0, 0.0, 250, 1000) == pytest.approx(1 - 0.5 * (1 - math.cos(math.pi / 4)))


def test_lr_decay_multiplies_the_schedule():
    cfg = make_config(R3, ["train.lr_decay=linear", "train.steps=10"])
    assert values(cfg, 5, 1000).lr_g == pytest.approx(5e-5 * 0.5)


def test_no_schedule_keeps_the_config():
    v = values(make_config({}), 7, 10**6)
    assert (v.lr_g, v.beta2_g, v.r1, v.augment_p) == (2e-4, 0.999, 0.0, None)


@pytest.mark.parametrize("over, msg", [
    (["schedule.lr=0.5"], "schedule.images: is 0"),
    (["schedule.images=10", "schedule.augment_p=0.5"], "schedule.augment_p: needs augment.policy"),
    (["schedule.images=10", "schedule.beta2=1.5"], "schedule.beta2: must be in [0, 1)"),
])
def test_bad_schedules_are_refused(over, msg):
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace(")", r"\)")):
        make_config({}, over)


def test_a_run_follows_the_schedule(tmp_path):
    from gankit.training.loop import train

    cfg = make_config({**R3, "schedule": {**R3["schedule"], "images": 16 * 6}}, tiny_overrides(**{"train.steps": 8, "train.log_every": 1}))
    p = train(cfg, tmp_path / "run", quiet=True)
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    want = [values(cfg, r["step"] - 1, r["images"] - cfg.train.batch_size) for r in recs]  # set before each step
    assert [r["lr_g"] for r in recs] == pytest.approx([w.lr_g for w in want])
    assert [r["r1_weight"] for r in recs] == pytest.approx([w.r1 for w in want], abs=1e-8)
    assert [r["augment_p"] for r in recs] == pytest.approx([w.augment_p for w in want], abs=1e-5)
    assert recs[-1]["lr_g"] == pytest.approx(5e-5) and p.opt_d.param_groups[0]["betas"] == (0.0, pytest.approx(0.99))
