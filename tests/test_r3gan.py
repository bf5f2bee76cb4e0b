"""The r3gan architecture: shapes at every resolution it claims, conditional and not; fix-up start;
a run with its own loss and penalties (rpgan, R1, R2) under bf16 + channels_last; an exact resume."""
import pytest
import torch

from gankit.config import make_config
from gankit.errors import ConfigError
from gankit.training.loop import train
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


def _parity_nets(seed: int, conditional: bool = True):
    """The parity harness's config (benchmarks/parity/r3gan.py): 32x32 RGB, widths [128, 128, 64, 32]."""
    cfg = make_config({}, ["model.arch=r3gan", "model.widths=[128,128,64,32]", "model.blocks=[1]", "model.z_dim=64",
                           f"model.conditional={str(conditional).lower()}"])
    torch.manual_seed(seed)
    return build_models(make_spec(cfg.model, (3, 32, 32), 10 if conditional else 0, "image"), "r3gan")


def test_start_up_statistics_match_r3gans():
    """Measured once with the authors' networks (brownvc/R3GAN 19a7ddf, `benchmarks/parity/r3gan.py`,
    median of 5 seeds): G's output std 0.387 (+- 0.049), z's share of it 0.973, D's logit std on unit
    images 0.020 (+- 0.002). gankit's networks before this check started at G std 0.015 with z
    explaining 44% (the class embedding drowned it), which collapsed every class to one image."""
    g_std, z_share, d_std = [], [], []
    for seed in range(3):
        G, D = _parity_nets(seed)
        G.eval(), D.eval()
        g = torch.Generator().manual_seed(100 + seed)
        z, x = torch.randn(64, 64, generator=g), torch.randn(64, 3, 32, 32, generator=g)
        with torch.no_grad():
            g_std.append(float(G(z, torch.arange(64) % 10).std()))
            d_std.append(float(D(x, torch.arange(64) % 10).std()))
            outs = torch.stack([G(z[:16], torch.full((16,), c)) for c in range(10)])
        z_share.append(float(outs.mean(0).var(0).mean() / outs.var(dim=(0, 1)).mean()))
    med = lambda v: sorted(v)[1]  # noqa: E731
    assert 0.29 < med(g_std) < 0.49, g_std
    assert med(z_share) > 0.9, z_share
    assert 0.015 < med(d_std) < 0.027, d_std


def test_the_class_term_of_d_starts_at_r3gans_scale():
    """R3GAN's conditional D has only a class term, <linear(h), embed(y)>, with the embedding at gain
    1/sqrt(width): unit-variance features give a logit of variance 1/classes (an N(0, 1) embedding
    made it sqrt(width) times larger, and a separate unconditional term is not R3GAN's)."""
    cfg = make_config({}, ["model.arch=r3gan", "model.widths=[256,64,32]", "model.conditional=true"])
    _, D = build_models(make_spec(cfg.model, (1, 16, 16), 10, "image"), "r3gan")
    torch.manual_seed(0)
    h = torch.randn(8192, 256)
    with torch.no_grad():
        logits = D.head(h, torch.arange(8192) % 10)
    assert abs(float(logits.std()) - 10 ** -0.5) < 0.05
    assert not any("bias" in k for k in D.head.state_dict())


def test_resampling_is_r3gans_filter():
    """[1, 3, 3, 1] inside the image (as bilinear there) and zero padding at the borders."""
    from gankit.models.layers import fir_resample as resample
    x = torch.randn(2, 3, 8, 8)
    up, down = resample(x, True), resample(x, False)
    bil = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(up[..., 1:-1, 1:-1], bil[..., 1:-1, 1:-1], atol=1e-6)
    ones = resample(torch.ones(1, 1, 8, 8), True)
    assert float(ones[0, 0, 0, 0]) == 0.75 ** 2 and float(ones[0, 0, 5, 5]) == 1.0
    assert down.shape == (2, 3, 4, 4)
    aa = torch.nn.functional.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True, align_corners=False)
    assert torch.allclose(down[..., 1:-1, 1:-1], aa[..., 1:-1, 1:-1], atol=1e-6)


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
