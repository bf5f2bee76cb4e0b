"""The r3gan architecture: shapes at every resolution it claims, conditional and not; fix-up start;
a run with its own loss and penalties (rpgan, R1, R2) under bf16 + channels_last; an exact resume."""
import pytest
import torch

from gankit.config import make_config
from gankit.errors import ConfigError
from gankit.loop import train
from gankit.models import ARCHS, build_models, make_spec
from gankit.models.r3gan import ResidualBlock

from .conftest import tiny_overrides


@pytest.mark.parametrize("res", ARCHS.get("r3gan").resolutions)
@pytest.mark.parametrize("conditional", [False, True])
def test_output_shapes_at_every_resolution(res, conditional):
    cfg = make_config({}, ["model.arch=r3gan", "model.width=4", "model.z_dim=8", f"model.conditional={str(conditional).lower()}"])
    spec = make_spec(cfg.model, (3, res, res), 10, "image")
    G, D = build_models(spec, "r3gan")
    y = torch.tensor([3, 7]) if conditional else None
    x = G(torch.randn(2, 8), y)
    assert x.shape == (2, 3, res, res) and torch.isfinite(x).all()
    assert D(x, y).shape == (2,)
    _, E = build_models(spec, "r3gan", vae=True)  # as a VAE's encoder: 2 x z_dim outputs
    assert E(x).shape == (2, 16)


def test_residual_blocks_start_as_the_identity():
    block = ResidualBlock(16, total_blocks=8)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(block(x), x)  # fix-up: the branch's last conv starts at zero
    block.narrow.weight.data.normal_()
    assert not torch.equal(block(x), x)


def test_the_class_term_of_d_starts_at_r3gans_scale():
    """R3GAN scales D's class embedding by 1/sqrt(width): with unit-variance features the class term
    has unit variance (an N(0, 1) embedding would make it sqrt(width) times the rest of D's output)."""
    cfg = make_config({}, ["model.arch=r3gan", "model.widths=[256,64,32]", "model.conditional=true"])
    _, D = build_models(make_spec(cfg.model, (1, 16, 16), 10, "image"), "r3gan")
    torch.manual_seed(0)
    h = torch.randn(4096, 256)
    class_term = (D.head.embed(torch.arange(4096) % 10) * h).sum(1)
    assert 0.7 < float(class_term.std()) < 1.3


def test_widths_and_blocks_per_stage():
    cfg = make_config({}, ["model.arch=r3gan", "model.widths=[16,16,8]", "model.blocks=[1,2,1]"])
    spec = make_spec(cfg.model, (1, 16, 16), 0, "image")
    G, _ = build_models(spec, "r3gan")
    assert [sum(isinstance(m, ResidualBlock) for m in s) for s in G.stages] == [1, 2, 1]
    assert G.to_image.in_channels == 8
    with pytest.raises(ConfigError, match="model.widths: 16x16 has 3 stages"):
        make_spec(make_config({}, ["model.arch=r3gan", "model.widths=[16,8]"]).model, (1, 16, 16), 0, "image")
    with pytest.raises(ConfigError, match="model.blocks: only the r3gan arch"):
        make_spec(make_config({}, ["model.blocks=[1]"]).model, (1, 16, 16), 0, "image")


R3 = {"model.arch": "r3gan", "model.width": 8, "loss.name": "rpgan", "loss.r1": 0.1, "loss.r2": 0.1, "model.conditional": True,
      "train.precision": "bf16", "train.channels_last": True, "train.betas_g": "[0.0,0.99]", "train.betas_d": "[0.0,0.99]"}


def test_a_run_trains_and_resumes_bit_exactly(tmp_path):
    full = train(make_config({}, tiny_overrides(**R3)), tmp_path / "full", quiet=True)
    assert full.step == 6
    train(make_config({}, tiny_overrides(**{**R3, "train.steps": 3})), tmp_path / "half", quiet=True)
    resumed = train(make_config({}, tiny_overrides(**R3)), tmp_path / "half", resume="auto", quiet=True)
    for name in ("G", "D", "G_ema"):
        a, b = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
    moved = [k for k, v in full.G.state_dict().items() if k.endswith("narrow.weight") and v.abs().sum() > 0]
    assert moved  # the zero-initialised branches have started to learn
