import pytest
import torch

from gankit.config import ModelConfig
from gankit.errors import ConfigError
from gankit.losses import LOSSES, gradient_penalty, r1_penalty
from gankit.models import ARCHS, build_models, make_spec

# every architecture at every resolution the registry claims for it, grey and colour
CASES = [("mlp", (2,))] + [(a, (c, r, r)) for a in ARCHS.names() if ARCHS.get(a).kind == "image"
                           for r in ARCHS.get(a).resolutions for c in (1, 3)]


@pytest.mark.parametrize("arch,shape", CASES, ids=[f"{a}-{'x'.join(map(str, s))}" for a, s in CASES])
@pytest.mark.parametrize("conditional", [False, True])
def test_output_shapes(arch, shape, conditional):
    cfg = ModelConfig(arch=arch, z_dim=8, width=4, conditional=conditional)
    kind = "points" if arch == "mlp" else "image"
    if conditional and not ARCHS.get(arch).conditional:
        with pytest.raises(ConfigError, match=f"model.conditional: {arch} is unconditional"):
            make_spec(cfg, shape, 10, kind)
        return
    spec = make_spec(cfg, shape, 10 if conditional else 0, kind)
    G, D = build_models(spec, arch)
    y = torch.arange(4) % 10 if conditional else None
    x = G(torch.randn(4, 8), y)
    assert x.shape == (4, *shape)
    if arch not in ("mlp", "stylegan2", "r3gan"):  # StyleGAN2 and R3GAN have linear outputs, as their papers
        assert float(x.detach().abs().max()) <= 1.0
    assert D(x, y).shape == (4,)
    if kind == "image":  # as a VAE's encoder: 2 x z_dim outputs
        _, E = build_models(spec, arch, vae=True)
        assert E(x.detach()).shape == (4, 16)


def test_pac_packs_samples_into_d():
    spec = make_spec(ModelConfig(arch="dcgan", z_dim=8, width=8, pac=4), (1, 16, 16), 0, "image")
    _, D = build_models(spec, "dcgan")
    from gankit.training.steps import pack

    x = torch.randn(8, 1, 16, 16)
    assert pack(x, 4).shape == (2, 4, 16, 16) and D(pack(x, 4)).shape == (2,)
    assert torch.equal(pack(x, 4)[1, 2], x[6, 0])


def test_d_extra_adds_a_3x3_conv_at_each_scale_and_keeps_old_layer_names():
    def d_convs(d_extra: int, sn_d: bool = True):
        spec = make_spec(ModelConfig(arch="dcgan", z_dim=8, width=8, pac=2, d_extra=d_extra, sn_d=sn_d), (3, 32, 32), 0, "image")
        _, D = build_models(spec, "dcgan")
        assert D(torch.randn(4, 6, 32, 32)).shape == (4,)
        return D, [(n, m.kernel_size, m.stride, m.in_channels, m.out_channels) for n, m in D.named_modules() if isinstance(m, torch.nn.Conv2d)]

    _, base = d_convs(0)
    assert [(k, s, i, o) for _, k, s, i, o in base] == [((4, 4), (2, 2), 6, 8), ((4, 4), (2, 2), 8, 16), ((4, 4), (2, 2), 16, 32)]
    assert [n for n, *_ in base] == ["body.0", "body.2", "body.4"]  # checkpoints of the plain D still load
    D1, deep = d_convs(1)
    assert [(k, s, i, o) for _, k, s, i, o in deep] == [
        ((4, 4), (2, 2), 6, 8), ((3, 3), (1, 1), 8, 8), ((4, 4), (2, 2), 8, 16), ((3, 3), (1, 1), 16, 16),
        ((4, 4), (2, 2), 16, 32), ((3, 3), (1, 1), 32, 32)]
    assert all(hasattr(m, "parametrizations") for m in D1.modules() if isinstance(m, torch.nn.Conv2d))  # SN on every conv
    _, plain = d_convs(1, sn_d=False)
    assert len(plain) == 6
    with pytest.raises(ConfigError, match="model.d_extra"):
        make_spec(ModelConfig(arch="resnet", d_extra=1), (3, 32, 32), 0, "image")


@pytest.mark.parametrize("conditional", [False, True])
def test_g_extra_adds_a_3x3_conv_at_each_scale_below_the_output(conditional):
    def g_of(g_extra: int):
        cfg = ModelConfig(arch="dcgan", z_dim=8, width=8, g_extra=g_extra, conditional=conditional)
        G, _ = build_models(make_spec(cfg, (3, 32, 32), 10 if conditional else 0, "image"), "dcgan")
        return G

    y = torch.arange(4) if conditional else None
    G0, G1 = g_of(0), g_of(1)
    convs = [(m.kernel_size, m.in_channels, m.out_channels) for m in G1.modules() if type(m) is torch.nn.Conv2d]
    assert convs == [((3, 3), 32, 32), ((3, 3), 16, 16), ((3, 3), 8, 8)]  # at 4x4, 8x8, 16x16
    assert G1(torch.randn(4, 8), y).shape == (4, 3, 32, 32)
    assert set(G1.state_dict()) > set(G0.state_dict())
    assert not any(k.startswith("extra") for k in G0.state_dict())  # checkpoints of the plain G still load
    with pytest.raises(ConfigError, match="model.g_extra"):
        make_spec(ModelConfig(arch="resnet", g_extra=1), (3, 32, 32), 0, "image")


def test_bad_resolution_and_kind_are_config_errors():
    with pytest.raises(ConfigError, match="data.resolution"):
        make_spec(ModelConfig(arch="dcgan"), (1, 28, 28), 0, "image")
    with pytest.raises(ConfigError, match="model.arch"):
        make_spec(ModelConfig(arch="mlp"), (1, 32, 32), 0, "image")
    with pytest.raises(ConfigError, match="model.conditional"):
        make_spec(ModelConfig(arch="dcgan", conditional=True), (1, 32, 32), 0, "image")
    with pytest.raises(ConfigError, match="dcgan, fastgan, mlp, r3gan, resnet, resnet_blocks, stylegan2, unet"):
        ARCHS.get("stylegan9")


@pytest.mark.parametrize("loss_name", LOSSES.names())
def test_one_d_and_one_g_step_move_the_losses(loss_name):
    torch.manual_seed(0)
    spec = make_spec(ModelConfig(arch="dcgan", z_dim=8, width=8), (1, 16, 16), 0, "image")
    G, D = build_models(spec, "dcgan")
    loss = LOSSES.get(loss_name)
    opt_d = torch.optim.SGD(D.parameters(), lr=0.05)
    opt_g = torch.optim.SGD(G.parameters(), lr=0.05)
    real = torch.rand(16, 1, 16, 16) * 2 - 1
    z = torch.randn(16, 8)
    D.eval(), G.eval()  # fixed BN statistics so that before/after are comparable

    def d_loss():
        return loss.d(D(real), D(G(z).detach()))

    before = float(d_loss())
    opt_d.zero_grad()
    d_loss().backward()
    opt_d.step()
    after = float(d_loss())
    assert after < before, (before, after)

    def g_loss():  # a relativistic loss pairs G's samples with the real batch
        return loss.g(D(G(z)), D(real).detach()) if loss.relativistic else loss.g(D(G(z)))

    g_before = float(g_loss())
    opt_g.zero_grad()
    g_loss().backward()
    assert all(p.grad is not None for p in G.parameters())
    opt_g.step()
    assert float(g_loss()) < g_before


def test_loss_values_by_hand():
    r, f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    assert float(LOSSES.get("hinge").d(r, f)) == pytest.approx((0 + 2) / 2 + (1.5 + 0) / 2)
    assert float(LOSSES.get("wgan").d(r, f)) == pytest.approx(-1.25 - 0.5)
    assert float(LOSSES.get("lsgan").g(f)) == pytest.approx(0.5 * (0.25 + 16) / 2)
    sp = torch.nn.functional.softplus
    assert float(LOSSES.get("ns").g(f)) == pytest.approx(float(sp(-f).mean()))


def test_penalties_on_a_linear_critic():
    # D(x) = w . x has gradient w everywhere: GP = (|w| - 1)^2, R1 = 0.5 |w|^2
    w = torch.tensor([3.0, 4.0])

    def D(x, y=None):
        return x @ w

    x = torch.randn(10, 2)
    assert float(gradient_penalty(D, x, torch.randn(10, 2), None)) == pytest.approx(16.0)
    assert float(r1_penalty(D, x, None)) == pytest.approx(12.5)


def test_wgan_gp_critic_judges_each_sample_alone():
    """No batch norm in a DCGAN critic trained with a gradient penalty (sn_d off): a sample's
    score must not depend on the rest of the batch."""
    from gankit.config import make_config
    from gankit.data import load_dataset
    from gankit.training.state import build_state

    cfg = make_config({}, ["data.source=digits", "data.resolution=16", "model.width=8", "model.sn_d=false", "loss.name=wgan", "loss.gp=10"])
    D = build_state(cfg, load_dataset(cfg.data)).D.train()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    x = torch.randn(8, 1, 16, 16)
    assert torch.allclose(D(x, None)[:2], D(x[:2], None), atol=1e-5)
    plain = make_config({}, ["data.source=digits", "data.resolution=16", "model.width=8", "model.sn_d=false"])
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in build_state(plain, load_dataset(plain.data)).D.modules())


@pytest.mark.parametrize("channels", [1, 3])
def test_d_input_layer_is_fp32_and_exact_under_bf16_autocast(channels, monkeypatch):
    # D's input-layer weight gradient lost 17% (relative error) to bf16 on a trained demo
    # checkpoint, 3% in fp32; one input channel takes the unfold + matmul path on a CPU
    from gankit.models import dcgan
    from gankit.models.layers import input_layer
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, 8, 4, 2, 1)
    x = (torch.rand(4, channels, 32, 32) * 2 - 1).requires_grad_(True)
    want = conv(x)
    (gx_want, gw_want) = torch.autograd.grad(want.square().sum(), (x, conv.weight))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = input_layer(conv, x)
    assert got.dtype == torch.float32 and got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    (gx, gw) = torch.autograd.grad(got.square().sum(), (x, conv.weight))
    torch.testing.assert_close(gx, gx_want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gw, gw_want, rtol=1e-4, atol=1e-5)
    # and the DCGAN discriminator sends its input through it
    calls = []
    monkeypatch.setattr(dcgan, "input_layer", lambda layer, h: calls.append(layer) or layer(h))
    spec = make_spec(ModelConfig(arch="dcgan", z_dim=8, width=8), (channels, 32, 32), 0, "image")
    _, D = build_models(spec, "dcgan")
    D(torch.zeros(2, channels, 32, 32))
    assert calls == [D.body[0]]


def test_d_input_layer_matmul_path_keeps_spectral_norm():
    # the unfold + matmul path reads `conv.weight`: with the parametrized spectral norm that is
    # the normalised weight, and gradients reach the raw parameter
    from gankit.models.layers import input_layer, sn
    torch.manual_seed(0)
    conv = sn(torch.nn.Conv2d(1, 8, 4, 2, 1), True).eval()  # eval: no power-iteration update between calls
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    want = conv(x)
    got = input_layer(conv, x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    raw = conv.parametrizations.weight.original
    g_want, = torch.autograd.grad(conv(x).square().sum(), raw)
    g_got, = torch.autograd.grad(input_layer(conv, x).square().sum(), raw)
    assert g_got.abs().sum() > 0
    torch.testing.assert_close(g_got, g_want, rtol=1e-4, atol=1e-6)
