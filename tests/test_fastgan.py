"""The fastgan architecture: skip-layer excitation where the paper has it, quadrants, the
self-supervised reconstruction loss (a hand computation, and it trains D's decoders), a run with
DiffAugment that resumes bit-exactly, unconditional only."""
import pytest
import torch
import torch.nn.functional as F

from gankit.config import make_config
from gankit.errors import ConfigError
from gankit.training.loop import train
from gankit.models import build_models, make_spec
from gankit.models.fastgan import SLE, quadrants

from .conftest import tiny_overrides


def nets(res):
    cfg = make_config({}, ["model.arch=fastgan", "model.width=4", "model.z_dim=8"])
    return build_models(make_spec(cfg.model, (3, res, res), 0, "image"), "fastgan")


@pytest.mark.parametrize("res, gates", [(32, []), (64, ["64"]), (128, ["64", "128"]), (256, ["64", "128", "256"])])
def test_skip_layer_excitation_gates_64_px_and_up(res, gates):
    G, _ = nets(res)
    assert list(G.sles) == gates
    sle = SLE(4, 6, False)
    small, big = torch.randn(2, 4, 8, 8), torch.randn(2, 6, 32, 32)
    gate = sle.net(small)
    assert gate.shape == (2, 6, 1, 1) and ((gate > 0) & (gate < 1)).all()  # one sigmoid gate per channel
    assert torch.allclose(sle(small, big), big * gate)


def test_quadrants_pick_each_images_part():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float).reshape(2, 1, 4, 4)
    q = quadrants(x, torch.tensor([0, 3]))
    assert torch.equal(q[0, 0], x[0, 0, :2, :2]) and torch.equal(q[1, 0], x[1, 0, 2:, 2:])
    assert torch.equal(quadrants(x, torch.tensor([1, 2]))[0, 0], x[0, 0, :2, 2:])


def test_reconstruction_loss_is_a_hand_computation():
    _, D = nets(32)
    D.eval()
    x, part = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    logits, loss = D.reconstruct(x, part)
    f16, h8 = D.features(x)
    assert torch.allclose(logits, D(x)) and f16.shape[-1] == 16 and h8.shape[-1] == 8
    crops = torch.stack([x[0, :, :16, :16], x[1, :, :16, 16:], x[2, :, 16:, :16], x[3, :, 16:, 16:]])
    want_part = F.interpolate(crops, size=32, mode="bilinear", align_corners=False, antialias=True)
    feats = torch.stack([f16[0, :, :8, :8], f16[1, :, :8, 8:], f16[2, :, 8:, :8], f16[3, :, 8:, 8:]])
    want = F.mse_loss(D.decode_all(h8), x) + F.mse_loss(D.decode_part(feats), want_part)
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)


FG = {"model.arch": "fastgan", "model.width": 4, "augment.policy": "color,translation,cutout", "data.channels": 3,
      "train.channels_last": True}


def test_a_run_trains_its_decoders_and_resumes_bit_exactly(tmp_path):
    full = train(make_config({}, tiny_overrides(**FG)), tmp_path / "full", quiet=True)
    assert full.step == 6
    import json
    recs = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["recon"] > 0 for r in recs)  # the reconstruction loss is logged ...
    from gankit.data import load_dataset
    from gankit.training.state import build_state

    cfg = make_config({}, tiny_overrides(**FG))
    start = build_state(cfg, load_dataset(cfg.data)).D  # ... and D's decoders moved from where the run started
    moved = [(a - b).abs().max().item() for a, b in zip(full.D.decode_all.parameters(), start.decode_all.parameters())]
    assert min(moved) > 0
    train(make_config({}, tiny_overrides(**{**FG, "train.steps": 3})), tmp_path / "half", quiet=True)
    resumed = train(make_config({}, tiny_overrides(**FG)), tmp_path / "half", resume="auto", quiet=True)
    for name in ("G", "D", "G_ema"):
        a, b = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}.{k}"


def test_recon_off_leaves_the_decoders_alone(tmp_path):
    p = train(make_config({}, tiny_overrides(**{**FG, "loss.recon": 0, "train.steps": 2})), tmp_path / "run", quiet=True)
    assert all(q.grad is None or not q.grad.any() for q in p.D.decode_all.parameters())


def test_fastgan_is_unconditional():
    with pytest.raises(ConfigError, match="model.conditional: fastgan is unconditional"):
        make_spec(make_config({}, ["model.arch=fastgan", "model.conditional=true"]).model, (3, 32, 32), 10, "image")


def test_the_fewshot_preset_trains_on_a_folder_of_photos(tmp_path):
    from PIL import Image

    import gankit
    from gankit.config import load_config

    from .conftest import ROOT

    folder = tmp_path / "photos"
    folder.mkdir()
    gen = torch.Generator().manual_seed(0)
    for i in range(12):  # odd sizes and modes, as a user's folder has
        arr = (torch.rand(300 + i, 260, 3, generator=gen) * 255).to(torch.uint8).numpy()
        Image.fromarray(arr).convert("RGB" if i % 3 else "L").save(folder / f"p{i:02d}.{'png' if i % 2 else 'jpg'}")
    cfg = load_config(ROOT / "configs" / "fewshot256_fastgan.yaml",
                      [f"data.source={folder}", "model.width=2", "train.steps=2", "train.batch_size=4", "train.checkpoint_every=2", "train.threads=2"])
    train(cfg, tmp_path / "run", quiet=True)
    images = gankit.load(tmp_path / "run").sample(2)
    assert images.shape == (2, 256, 256, 3)


def test_start_up_statistics_are_near_the_authors():
    """Measured once with the authors' models.py (`benchmarks/parity/fastgan.py`, 256 px, width 16, z 256,
    median of 3 seeds): their G's output before its last layer's nonlinearity has std 0.254 (gankit's
    default, without spectral norm in G: 0.19; with model.sn_g=true, theirs: 0.28), their D's patch logits
    on unit images 0.69 (gankit 0.67)."""
    g_std, d_std = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        cfg = make_config({}, ["model.arch=fastgan", "model.width=16", "model.z_dim=256"])
        G, D = build_models(make_spec(cfg.model, (3, 256, 256), 0, "image"), "fastgan")
        g = torch.Generator().manual_seed(100 + seed)
        z, x = torch.randn(4, 256, generator=g), torch.randn(4, 3, 256, 256, generator=g)
        seen = []
        hook = G.to_image.register_forward_hook(lambda m, i, o: seen.append(o))
        with torch.no_grad():
            G(z)
            d_std.append(float(D.head(D.features(x)[1]).std()))
        hook.remove()
        g_std.append(float(seen[0].std()))
    assert 0.12 < sorted(g_std)[1] < 0.4, g_std
    assert 0.45 < sorted(d_std)[1] < 1.0, d_std
