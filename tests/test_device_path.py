"""The GPU path, exercised on the CPU: deferred finiteness checks (no host synchronisation
in the step), fused Adam skipping a non-finite update on the device, batches via Batches."""
from __future__ import annotations

import json

import pytest
import torch

from gankit.training.batches import Batches
from gankit.config import DataConfig, make_config
from gankit.data import load_dataset
from gankit.training.guard import FiniteGuard
from gankit.training.loop import train

from .conftest import tiny_overrides
from .test_train import _NaNAfter


@pytest.fixture
def deferred(monkeypatch):
    monkeypatch.setattr("gankit.training.guard.SYNC_FREE_DEVICES", {"cuda", "cpu"})


def test_deferred_guard_leaves_weights_and_adam_state_untouched_on_a_bad_step(deferred):
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = torch.optim.Adam([w], lr=0.1, fused=True)
    guard = FiniteGuard(torch.device("cpu"))
    assert guard.deferred

    def step(value: float) -> None:
        guard.begin()
        loss = (w * value).sum()
        opt.zero_grad()
        loss.backward()
        assert guard.ok(loss, w.grad) is True  # deferred: never reads the value
        guard.step(opt)
        guard.end()

    step(1.0)
    after_good = w.detach().clone()
    state = {k: v.clone() for k, v in opt.state[w].items()}
    assert not torch.equal(after_good, torch.tensor([1.0, -2.0]))
    step(float("nan"))
    assert torch.equal(w.detach(), after_good)  # skipped on the "device"
    for k, v in opt.state[w].items():
        assert torch.equal(v, state[k]), k  # moments and step counter too
    assert guard.flush() == (1, 1)
    step(1.0)
    assert not torch.equal(w.detach(), after_good)
    assert guard.flush() == (0, 0)


def test_deferred_run_counts_skips_keeps_finite_weights_and_rolls_back(tmp_path, monkeypatch, deferred):
    monkeypatch.setattr("gankit.training.steps.LOSSES", _NaNAfter(5, 8))  # three bad steps in a row
    cfg = make_config({}, tiny_overrides(**{"train.max_nonfinite": 3, "train.on_failure": "rollback", "train.steps": 12,
                                             "train.log_every": 4, "train.checkpoint_every": 2}))
    p = train(cfg, tmp_path, quiet=True)
    assert p.counters == {"nonfinite": 3, "rollbacks": 1}
    assert p.step == 12
    for m in (p.G, p.D, p.G_ema):
        assert all(torch.isfinite(x).all() for x in m.state_dict().values())
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "event" in r] == [6]  # found at the log interval (step 8), back to step 6
    for r in recs:
        if "loss_d" in r:
            assert r["loss_d"] == r["loss_d"]  # no NaN leaks into the logged means


def test_deferred_and_eager_runs_agree_when_nothing_goes_wrong(tmp_path, deferred, monkeypatch):
    cfg = make_config({}, tiny_overrides(**{"train.steps": 4}))
    a = train(cfg, tmp_path / "deferred", quiet=True)
    monkeypatch.setattr("gankit.training.guard.SYNC_FREE_DEVICES", {"cuda"})
    b = train(cfg, tmp_path / "eager", quiet=True)
    for x, y in zip(list(a.G.state_dict().values()) + list(a.D.state_dict().values()),
                    list(b.G.state_dict().values()) + list(b.D.state_dict().values())):
        assert torch.equal(x, y)


def test_batches_match_the_dataset_and_follow_channels_last():
    ds = load_dataset(DataConfig(source="digits"))
    b = Batches(ds, torch.device("cpu"), channels_last=True, conditional=True)
    idx = torch.tensor([3, 1, 4])
    x, y = b.real(idx)
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, ds.to_float(idx)) and torch.equal(y, ds.labels[idx])
    assert b.x.data_ptr() == ds.x.data_ptr()  # the data tensor is used in place, not copied


def test_training_reports_peak_memory(tmp_path):
    train(make_config({}, tiny_overrides(**{"train.steps": 2})), tmp_path, quiet=True)
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(r["peak_rss_mb"] > 50 for r in recs if "images_per_s" in r)  # torch alone takes more than that


def test_plain_dcgan_flops_match_the_published_count():
    """FlopCounterMode on the textbook step: 158.9 GFLOP per batch-64 step at 64x64x3 (FINDINGS.md)."""
    from gankit.api.bench import PlainDCGAN, count_flops

    plain = PlainDCGAN(64, 3, torch.device("cpu"))
    real = torch.rand(2, 3, 64, 64) * 2 - 1
    assert count_flops(lambda: plain.step(real)) * 32 / 1e9 == pytest.approx(158.9, rel=0.005)


def test_bench_table_has_every_column(capsys):
    from gankit.api.bench import run_bench

    text = run_bench("cpu", shapes=("32x32x1",), batch=8, repeats=1, quick=True, quiet=True)
    rows = [line for line in text.splitlines() if line.startswith("| (")]
    assert [r.split("|")[1].strip()[:3] for r in rows] == ["(a)", "(b)", "(b)", "(b)", "(c)"]
    for r in rows:
        ms, ips = float(r.split("|")[3]), float(r.split("|")[4])
        # both printed rounded: ms to 0.1, so a small ms (quick mode's values are noise, even negative) leaves
        # images/s uncertain by up to 0.05 / |ms| of itself
        assert abs(ips - 8 / (ms / 1e3)) <= 0.5 + abs(ips) * (0.01 + 0.051 / max(abs(ms), 0.1))
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("args, culprit", [(["--repeats", "0"], "--repeats"), (["--batch", "-1"], "--batch"), (["--shapes", "8x8x1"], "--shapes"),
                                            (["--out", "/proc/no/such/folder/b.md"], "--out")])
def test_bench_bad_arguments_are_one_line_errors(args, culprit):
    from .test_train import _cli

    r = _cli("bench", *args)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and culprit in r.stderr


def test_bench_out_folder_gets_bench_md(tmp_path, monkeypatch):
    import argparse

    from gankit.api import bench
    from gankit.commands import info
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: "| a table |")
    a = argparse.Namespace(device="cpu", shapes=["32x32x1"], batch=8, repeats=1, out=str(tmp_path))
    assert info.bench(a) == 0
    assert (tmp_path / "bench.md").read_text() == "| a table |\n"
    a.out = str(tmp_path / "t.md")
    info.bench(a)
    assert (tmp_path / "t.md").read_text() == "| a table |\n"
