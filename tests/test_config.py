from pathlib import Path

import pytest

from gankit.config import Config, dump_yaml, load_config, make_config
from gankit.errors import ConfigError

from .conftest import ROOT

PRESETS = sorted((ROOT / "configs").glob("*.yaml"))


def test_presets_exist():
    names = {p.stem for p in PRESETS}
    for want in ("ring8", "grid25", "digits", "mnist_dcgan", "mnist_resnet_hinge", "mnist_wgangp", "mnist_conditional", "folder64"):
        assert want in names, want


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_parses_and_round_trips(path: Path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    again = make_config(__import__("yaml").safe_load(dump_yaml(cfg)))
    assert again == cfg


def test_overrides_are_typed():
    cfg = make_config({}, ["train.steps=12", "train.lr_g=1e-4", "train.betas_d=[0.0, 0.9]", "model.conditional=true", "data.resolution=null"])
    assert cfg.train.steps == 12 and cfg.train.lr_g == 1e-4 and cfg.train.betas_d == (0.0, 0.9)
    assert cfg.model.conditional is True and cfg.data.resolution is None


@pytest.mark.parametrize("override,key", [
    ("train.stepz=3", "train.stepz"),
    ("trian.steps=3", "trian"),
    ("train.steps=abc", "train.steps"),
    ("train.steps=-1", "train.steps"),
    ("train.lr_g=2", "train.lr_g"),
    ("train.precision=fp8", "train.precision"),
    ("train.keep_checkpoints=1", "train.keep_checkpoints"),
    ("model.conditional=maybe", "model.conditional"),
    ("augment.policy=flip", "augment.policy"),
    ("data.channels=2", "data.channels"),
    ("train.betas_g=[0.5]", "train.betas_g"),
    ("loss.r1_every=0", "loss.r1_every"),
])
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        make_config({}, [override])
    assert str(e.value).startswith(key), str(e.value)


def test_impossible_combination_is_refused():
    with pytest.raises(ConfigError, match="train.compile"):
        make_config({}, ["train.compile=true", "loss.r1=1"])
    with pytest.raises(ConfigError, match="train.batch_size"):
        make_config({}, ["model.pac=3", "train.batch_size=64"])
