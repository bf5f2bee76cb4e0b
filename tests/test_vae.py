import math

import numpy as np
import pytest
import torch

from gankit.config import VAEConfig, make_config
from gankit.errors import ConfigError
from gankit.training.loop import train
from gankit.models.vae import vae_terms

from .conftest import tiny_overrides


def _batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 2, 2, generator=g) * 2 - 1
    r = torch.rand(3, 1, 2, 2, generator=g) * 2 - 1
    mu, logvar = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g) * 0.5
    return x, r, mu, logvar


def _kl(mu, lv):
    return np.mean([0.5 * sum(m * m + math.exp(v) - 1 - v for m, v in zip(mr, vr)) for mr, vr in zip(mu.tolist(), lv.tolist())])


@pytest.mark.parametrize("sigma", [0.1, 0.0])
def test_gaussian_elbo_matches_a_hand_computation(sigma):
    x, r, mu, lv = _batch()
    t = vae_terms(x, r, mu, lv, VAEConfig(likelihood="gaussian", sigma=sigma))
    xs, rs = x.flatten(1).tolist(), r.flatten(1).tolist()
    if sigma == 0.0:  # learned: the ML std over the batch
        sigma = math.sqrt(np.mean([(a - b) ** 2 for xr, rr in zip(xs, rs) for a, b in zip(xr, rr)]))
    nll = np.mean([sum(0.5 * ((a - b) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi) for a, b in zip(xr, rr))
                   for xr, rr in zip(xs, rs)])
    assert float(t["recon"]) == pytest.approx(nll, rel=1e-5)
    assert float(t["kl"]) == pytest.approx(_kl(mu, lv), rel=1e-5)
    assert float(t["elbo"]) == pytest.approx(-(nll + _kl(mu, lv)), rel=1e-5)
    assert float(t["sigma"]) == pytest.approx(sigma, rel=1e-5)


def test_bernoulli_elbo_matches_a_hand_computation():
    x, r, mu, lv = _batch()
    t = vae_terms(x, r, mu, lv, VAEConfig(likelihood="bernoulli"))
    nll = np.mean([-sum(((a + 1) / 2) * math.log((b + 1) / 2) + (1 - (a + 1) / 2) * math.log(1 - (b + 1) / 2) for a, b in zip(xr, rr))
                   for xr, rr in zip(x.flatten(1).tolist(), r.flatten(1).tolist())])
    assert float(t["recon"]) == pytest.approx(nll, rel=1e-5)
    assert float(t["elbo"]) == pytest.approx(-(nll + _kl(mu, lv)), rel=1e-5)


def test_vae_trains_in_the_same_loop_and_elbo_rises(tmp_path):
    import json

    cfg = make_config({}, tiny_overrides(**{"model.family": "vae", "train.steps": 60, "train.log_every": 10, "train.lr_g": 1e-3,
                                            "train.lr_d": 1e-3, "vae.kl_warmup": 20}))
    p = train(cfg, tmp_path, quiet=True)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {"elbo", "recon", "kl", "sigma", "grad_norm_enc"} <= rows[-1].keys()
    assert rows[-1]["elbo"] > rows[0]["elbo"] + 50  # nats per image
    assert p.D.head.linear.out_features == 2 * cfg.model.z_dim  # D holds the encoder


def test_vae_sample_and_reconstruct_from_the_command_line(tmp_path):
    from PIL import Image

    from .test_train import _cli

    out = tmp_path / "run"
    assert _cli("train", *tiny_overrides(**{"model.family": "vae"}), "--out", str(out)).returncode == 0
    r = _cli("sample", str(out), "--reconstruct", "--n", "8", "--out", str(tmp_path / "rec.png"))
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "rec.png").size[1] > Image.open(tmp_path / "rec.png").size[0] / 8 * 1.5  # two rows
    assert _cli("sample", str(out), "--n", "8", "--out", str(tmp_path / "s.png")).returncode == 0
    gan = tmp_path / "gan"
    assert _cli("train", *tiny_overrides(**{"train.steps": 2}), "--out", str(gan)).returncode == 0
    r = _cli("sample", str(gan), "--reconstruct", "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "only a VAE run" in r.stderr


@pytest.mark.parametrize("override,key", [("model.conditional=true", "model.conditional"), ("loss.r1=1", "loss.r1"),
                                          ("augment.policy=color", "augment.policy"), ("model.arch=mlp", "model.arch")])
def test_vae_refuses_gan_only_settings(override, key):
    with pytest.raises(ConfigError, match=key):
        make_config({}, ["model.family=vae", override])
