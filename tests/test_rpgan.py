"""The relativistic pairing loss (rpgan) and the R2 penalty, against hand computations; a run with both."""
import json
import math

import pytest
import torch

from gankit.training.augment import Augmenter
from gankit.config import make_config
from gankit.training.loop import train
from gankit.losses import LOSSES, r1_penalty, r2_penalty

from .conftest import tiny_overrides


def test_rpgan_equals_the_hand_computation():
    r = torch.tensor([2.0, -1.0, 0.5])
    f = torch.tensor([0.0, 1.0, 0.5])
    loss = LOSSES.get("rpgan")
    assert loss.relativistic
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731 - softplus, by hand
    d = sum(sp(fi - ri) for ri, fi in zip(r.tolist(), f.tolist())) / 3  # -log sigmoid(r_i - f_i), pair by pair
    g = sum(sp(ri - fi) for ri, fi in zip(r.tolist(), f.tolist())) / 3
    assert float(loss.d(r, f)) == pytest.approx(d, rel=1e-6)
    assert float(loss.g(f, r)) == pytest.approx(g, rel=1e-6)
    # only differences count: shifting every logit changes nothing (unlike the non-saturating loss)
    assert float(loss.d(r + 7, f + 7)) == pytest.approx(d, rel=1e-6)
    assert float(LOSSES.get("ns").d(r + 7, f + 7)) != pytest.approx(float(LOSSES.get("ns").d(r, f)), rel=1e-3)


def test_r2_is_half_the_squared_gradient_norm_on_generated_samples():
    w = torch.tensor([[1.0, -2.0, 3.0]])

    def D(x, y):  # D(x) = w . x + 0.5 * ||x||^2: gradient w + x
        return (x @ w.t()).squeeze(1) + 0.5 * (x**2).sum(1)

    fake = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    by_hand = 0.5 * (((w + fake) ** 2).sum(1)).mean()
    assert float(r2_penalty(D, fake, None)) == pytest.approx(float(by_hand), rel=1e-6)
    real = torch.tensor([[2.0, 0.0, 0.0]])
    assert float(r1_penalty(D, real, None)) == pytest.approx(0.5 * float(((w + real) ** 2).sum()), rel=1e-6)


def test_a_run_with_rpgan_r1_and_r2_trains_and_resumes_exactly(tmp_path):
    over = tiny_overrides(**{"loss.name": "rpgan", "loss.r1": 0.5, "loss.r2": 0.5, "train.steps": 6})
    full = train(make_config({}, over), tmp_path / "full", quiet=True)
    recs = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in recs if "loss_d" in r)
    half = train(make_config({}, [*over, "train.steps=3"]), tmp_path / "half", quiet=True)
    assert half.step == 3
    resumed = train(make_config({}, over), tmp_path / "half", resume="auto", quiet=True)
    for k, v in full.G.state_dict().items():
        assert torch.equal(v, resumed.G.state_dict()[k]), k
    with pytest.raises(Exception, match="loss.r2: must be >= 0"):
        make_config({}, ["loss.r2=-1"])


def test_d_accuracy_of_a_relativistic_loss_compares_pairs():
    from gankit.losses import d_accuracy

    r, f = torch.tensor([62.0, 55.0, 40.0, 61.0]), torch.tensor([48.0, 49.0, 45.0, 50.0])
    assert d_accuracy(r, f, relativistic=True).item() == 0.75  # 3 of 4 real samples above their partner
    assert d_accuracy(r, f, relativistic=False).item() == 0.5  # the sign rule: every logit positive, "half right"
    assert d_accuracy(torch.tensor([1.0, -1.0]), torch.tensor([-2.0, -3.0]), relativistic=False).item() == 0.75


def test_adas_r_t_under_a_relativistic_loss_reads_the_pairs(tmp_path):
    """r_t = E[sign(D(real))] has no meaning when only logit differences count: under rpgan it reads
    the real-minus-generated differences, so r_t = 2 x pair accuracy - 1, and ADA's p follows it."""
    from gankit.losses import d_accuracy, rt_logits

    r, f = torch.tensor([62.0, 55.0, 40.0, 61.0]), torch.tensor([48.0, 49.0, 45.0, 50.0])
    rt = torch.sign(rt_logits(r, f, relativistic=True)).mean()
    assert rt.item() == 0.5 == 2 * d_accuracy(r, f, True).item() - 1  # the sign of D(real) alone reads 1.0
    assert torch.equal(rt_logits(r, f, relativistic=False), r)
    over = tiny_overrides(**{"loss.name": "rpgan", "loss.r1": 0.1, "train.steps": 8, "augment.policy": "translation",
                             "augment.adaptive": True, "train.log_every": 1})
    train(make_config({}, over), tmp_path / "run", quiet=True)
    recs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    recs = [x for x in recs if "d_acc" in x]
    k = Augmenter.INTERVAL  # the augmenter reads r_t over windows of k steps: 2 x their mean pair accuracy - 1
    windows = [recs[i:i + k] for i in range(0, len(recs), k)]
    assert len(windows) == 2 and all(len(w) == k for w in windows)
    for w in windows:
        assert w[-1]["r_t"] == pytest.approx(2 * sum(x["d_acc"] for x in w) / k - 1, abs=1e-6)
