"""The stylegan2 architecture: shapes at every resolution it claims, conditional and not; modulation
and demodulation; style mixing and path-length regularisation each change what they should;
truncation in W; a run with lazy R1 and path-length regularisation that resumes bit-exactly; an
ONNX export that takes psi."""
import pytest
import torch

from gankit.config import make_config
from gankit.errors import ConfigError
from gankit.training.loop import train
from gankit.losses import path_length_penalty, path_lengths
from gankit.models import ARCHS, build_models, make_spec
from gankit.models.stylegan2 import ModulatedConv, minibatch_std

from .conftest import tiny_overrides


def nets(res=16, conditional=False, channels=3, width=4):
    cfg = make_config({}, ["model.arch=stylegan2", f"model.width={width}", "model.z_dim=8", f"model.conditional={str(conditional).lower()}"])
    spec = make_spec(cfg.model, (channels, res, res), 10, "image")
    return build_models(spec, "stylegan2")


@pytest.mark.parametrize("res", ARCHS.get("stylegan2").resolutions)
@pytest.mark.parametrize("conditional", [False, True])
def test_output_shapes_at_every_resolution(res, conditional):
    G, D = nets(res, conditional)
    y = torch.tensor([3, 7]) if conditional else None
    x = G(torch.randn(2, 8), y)
    assert x.shape == (2, 3, res, res) and torch.isfinite(x).all()
    assert D(x, y).shape == (2,)
    assert G.num_ws == 2 * (res.bit_length() - 3) + 2  # two convs per resolution above 4x4, one at 4x4, one for the last toRGB
    if conditional:  # float class weights (the exported form) give the lookup's result exactly
        G.eval()
        assert torch.allclose(G(torch.ones(2, 8), torch.eye(10)[[3, 7]]), G(torch.ones(2, 8), torch.tensor([3, 7])), atol=1e-6)


def test_demodulation_gives_unit_output_norm_per_channel():
    conv = ModulatedConv(6, 5, 3, w_dim=4)
    w = torch.randn(3, 4)
    s = conv.affine(w)
    weight = conv.weight * conv.gain * s[:, None, :, None, None]  # the per-sample weights [N, O, I, k, k]
    d = torch.rsqrt(weight.square().sum((2, 3, 4)) + 1e-8)
    assert torch.allclose((weight * d[..., None, None, None]).square().sum((2, 3, 4)), torch.ones(3, 5), atol=1e-5)
    x = torch.randn(3, 6, 8, 8)  # the scale-conv-scale form equals per-sample convolution with demodulated weights
    ref = torch.stack([torch.nn.functional.conv2d(x[i:i + 1], weight[i] * d[i, :, None, None, None], padding=1)[0] for i in range(3)])
    assert torch.allclose(conv(x, w), ref, atol=1e-5)


def test_style_mixing_changes_only_the_layers_after_the_cutoff():
    G, _ = nets(16)
    G.eval()
    z, z2 = torch.randn(2, 8), torch.randn(2, 8)
    plain, mixed = G.ws(z), G.ws(z, mix=(z2, 3))
    assert torch.equal(mixed[:, :3], plain[:, :3]) and torch.equal(mixed[:, 3:], G.ws(z2)[:, 3:])
    assert not torch.allclose(G(z, mix=(z2, 3)), G(z))
    assert torch.equal(G(z, mix=(z2, G.num_ws)), G(z))  # a cutoff past the last layer: no mixing


def test_truncation_pulls_w_to_its_mean():
    G, _ = nets(16)
    G.mapping.w_avg.normal_()
    G.eval()
    z = torch.randn(4, 8)
    w, avg = G.ws(z)[:, 0], G.mapping.w_avg.clone()
    assert torch.allclose(G.ws(z, truncation=0.5)[:, 0], avg + 0.5 * (w - avg), atol=1e-6)
    assert torch.allclose(G.ws(z, truncation=0.0)[:, 0], avg.expand(4, -1))
    G.train()
    G(z)  # training tracks the running mean of w
    assert torch.allclose(G.mapping.w_avg, avg.lerp(w.mean(0), 1 - 0.995), atol=1e-6)


def test_eval_noise_is_fixed_and_training_noise_is_fresh():
    G, _ = nets(16)
    for layer in G.convs:
        layer.noise_strength.data.fill_(1.0)
    z = torch.randn(2, 8)
    G.eval()
    assert torch.equal(G(z), G(z))
    G.train()
    assert not torch.equal(G(z), G(z))


def test_per_sample_noise_follows_each_samples_seed_whatever_the_batch():
    """Seeded noise: a sample's training output depends on its seed, not on the batch it is in or
    its row (what lets two processes, each with half the batch, generate one process's samples)."""
    from gankit.models.layers import noise_inputs, per_sample_noise

    G, _ = nets(16)
    for layer in G.convs:
        layer.noise_strength.data.fill_(1.0)
    G.train()
    z, seeds = torch.randn(4, 8), torch.tensor([11, 22, 33, 44])
    with per_sample_noise(noise_inputs(G), seeds):
        whole = G(z)
        again = G(z)
    with per_sample_noise(noise_inputs(G), seeds[2:]):
        half = G(z[2:])
    with per_sample_noise(noise_inputs(G), seeds.flip(0)):
        flipped = G(z.flip(0))
    assert torch.equal(whole, again) and torch.allclose(half, whole[2:], atol=1e-6) and torch.allclose(flipped, whole.flip(0), atol=1e-6)
    with per_sample_noise(noise_inputs(G), torch.tensor([11, 22, 33, 45])):
        other = G(z)
    assert torch.equal(other[:3], whole[:3]) and not torch.allclose(other[3], whole[3])  # the seed, not the row
    assert len(noise_inputs(G)) == len(G.convs) and all(m.noise_seeds is None for m in G.convs)  # reset after
    assert not torch.equal(G(z), whole)  # outside: the global RNG


def test_path_length_penalty_is_a_hand_computation_and_moves_g():
    G, _ = nets(16)
    z, noise = torch.randn(4, 8), torch.randn(4, 3, 16, 16)
    lengths = path_lengths(G, z, None, noise)
    ws = G.ws(z).detach().requires_grad_(True)  # by hand: the gradient of <G(ws), n / sqrt(HW)> by ws, per sample
    (g,) = torch.autograd.grad((G.synthesis(ws) * noise / 16).sum(), ws)
    assert torch.allclose(lengths, g.square().sum(2).mean(1).sqrt(), rtol=1e-4)
    pen = path_length_penalty(lengths, 0.3)
    assert pen.item() == pytest.approx(((lengths - 0.3) ** 2).mean().item())
    pen.backward()  # the penalty reaches G's synthesis and mapping weights
    assert G.convs[0].conv.weight.grad.abs().sum() > 0 and G.mapping.layers[0].weight.grad.abs().sum() > 0


def test_minibatch_std_adds_the_group_spread():
    x = torch.randn(8, 3, 4, 4)
    out = minibatch_std(x)
    assert out.shape == (8, 4, 4, 4) and torch.equal(out[:, :3], x)
    want = [x[i:i + 4].std(0, unbiased=False).mean() for i in (0, 4)]  # groups of 4 consecutive rows
    for row in range(8):
        assert torch.allclose(out[row, 3], want[row // 4].expand(4, 4), atol=1e-5)
    assert torch.allclose(minibatch_std(x[4:])[:, 3], out[4:, 3])  # the second half alone: the same groups


SG2 = {"model.arch": "stylegan2", "model.width": 8, "loss.name": "ns", "loss.r1": 1.0, "loss.r1_every": 2,
       "loss.pl_weight": 2.0, "loss.pl_every": 2, "model.style_mixing": 0.9, "train.precision": "bf16",
       "train.channels_last": True, "data.channels": 3}


def test_a_run_trains_and_resumes_bit_exactly(tmp_path):
    full = train(make_config({}, tiny_overrides(**SG2)), tmp_path / "full", quiet=True)
    assert full.step == 6 and full.extra["pl_mean"] > 0
    train(make_config({}, tiny_overrides(**{**SG2, "train.steps": 3})), tmp_path / "half", quiet=True)
    resumed = train(make_config({}, tiny_overrides(**SG2)), tmp_path / "half", resume="auto", quiet=True)
    for name in ("G", "D", "G_ema"):
        a, b = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}.{k}"
    assert resumed.extra["pl_mean"] == full.extra["pl_mean"]


def test_options_of_other_archs_are_refused():
    with pytest.raises(ConfigError, match="loss.pl_weight: path-length regularisation needs model.arch=stylegan2"):
        make_config({}, ["loss.pl_weight=2"])
    with pytest.raises(ConfigError, match="model.style_mixing: only the stylegan2 arch has it"):
        make_spec(make_config({}, ["model.style_mixing=0.9"]).model, (1, 16, 16), 0, "image")


def test_export_and_load_truncate_in_w(tmp_path):
    from gankit import load
    from gankit.artefact.export import export

    train(make_config({}, tiny_overrides(**{**SG2, "train.steps": 2, "loss.pl_weight": 0})), tmp_path / "run", quiet=True)
    g = load(tmp_path / "run")
    assert g.truncates_w
    a, b = g.sample(4, seed=1, truncation=0.5), g.sample(4, seed=1)
    z = g.latents(4, seed=1, truncation=0.5)
    assert torch.equal(z, g.latents(4, seed=1))  # z stays unscaled: psi acts on w
    assert (a != b).any()
    pytest.importorskip("onnxruntime")
    out = export(tmp_path / "run", "onnx", tmp_path / "exp")
    import json

    import numpy as np
    import onnxruntime as ort

    meta = json.loads((out / "generator.json").read_text())
    assert meta["latent"]["truncation"] == "w_avg + psi * (w - w_avg)" and meta["onnx"]["inputs"]["psi"] == [1]
    sess = ort.InferenceSession(str(out / "generator.onnx"))
    got = sess.run(None, {"z": z.numpy(), "psi": np.array([0.5], np.float32)})[0]
    want = load(out).generate(z, truncation=0.5).numpy()
    assert np.abs(got - want).max() < 1e-4


def _parity_nets(seed: int, conditional: bool):
    """The parity harness's config (benchmarks/parity/stylegan2.py): 32x32 RGB, 256 channels, z 64."""
    cfg = make_config({}, ["model.arch=stylegan2", "model.widths=[256]", "model.z_dim=64", f"model.conditional={str(conditional).lower()}"])
    torch.manual_seed(seed)
    G, D = build_models(make_spec(cfg.model, (3, 32, 32), 10 if conditional else 0, "image"), "stylegan2")
    return G.eval(), D.eval()


@pytest.mark.parametrize("conditional, d_band", [(False, (0.025, 0.11)), (True, (0.12, 0.5))])
def test_start_up_statistics_match_stylegan2_ada(conditional, d_band):
    """Measured once with NVlabs/stylegan2-ada-pytorch's networks (`benchmarks/parity/stylegan2.py`,
    median of 5 seeds): G's output std 1.34 / 1.31 (unconditional / conditional), D's logit std on unit
    images 0.045 / 0.220 (gankit's 0.069 / 0.322: its D pools 2x2 boxes where StyleGAN2 filters). Its
    conditional D's logits started with std 6.8 before (an N(0, 1) embedding projected on h), 31x the
    reference's."""
    g_std, d_std = [], []
    for seed in range(3):
        G, D = _parity_nets(seed, conditional)
        g = torch.Generator().manual_seed(100 + seed)
        z, x = torch.randn(32, 64, generator=g), torch.randn(32, 3, 32, 32, generator=g)
        y = torch.arange(32) % 10 if conditional else None
        with torch.no_grad():
            g_std.append(float(G(z, y).std()))
            d_std.append(float(D(x, y).std()))
    assert 0.9 < sorted(g_std)[1] < 2.0, g_std
    assert d_band[0] < sorted(d_std)[1] < d_band[1], d_std


def test_the_conditional_head_is_stylegan2_adas():
    """<out(h), cmap(y)> / sqrt(dim), the label through D's own mapping network: a logit of about unit
    std for unit features, the same for a one-hot float label as for the integer one."""
    _, D = _parity_nets(0, True)
    torch.manual_seed(1)
    h, y = torch.randn(4096, 256), torch.arange(4096) % 10
    with torch.no_grad():
        logits = D.head(h, y)
        assert 0.5 < float(logits.std()) < 2.0
        assert torch.allclose(D.head(h[:8], torch.nn.functional.one_hot(y[:8], 10).float()), logits[:8], atol=1e-5)
    assert len(D.head.mapping) == 8 and D.head.mapping[0].w_gain == pytest.approx(0.01 / 16)
