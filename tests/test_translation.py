"""Paired translation (model.family=pix2pix): data, networks, the step's losses, the loop (resume, grids),
translation at any size and in tiles, the CLI and the API, and bad input as one line."""
import json
from contextlib import nullcontext

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gankit
from gankit.cli import main
from gankit.config import make_config
from gankit.data import load_dataset
from gankit.errors import ConfigError, GankitError
from gankit.training.loop import train
from gankit.models import build_models, make_spec
from gankit.training.state import build_state
from gankit.artefact.loader import load_generator
from gankit.models.layers import noise_inputs, per_sample_noise
from gankit.models.unet import InstanceNorm
from gankit.artefact.translation import translate_tensor, window_plan

from .conftest import tiny_overrides


def p2p_overrides(**extra) -> list[str]:
    """Seconds long: 32x32 grey -> colour crops, a 3-halving U-Net of width 8."""
    base = {"model.family": "pix2pix", "model.arch": "unet", "model.depth": 3, "model.width": 8, "model.sn_d": False,
            "loss.name": "ns", "data.source": "photo_crops", "data.pairs": "grey", "data.limit": 64, "data.resolution": "null",
            "model.z_dim": 8, "train.ema_halflife": 0}
    base.update(extra)
    return tiny_overrides(**base)


def spec_for(shape, in_channels=1, depth=3, **model):
    cfg = make_config({}, p2p_overrides(**{"model.depth": depth, **{f"model.{k}": v for k, v in model.items()}}))
    return cfg, make_spec(cfg.model, shape, 0, "pairs", in_channels=in_channels)


@pytest.mark.parametrize("hw", [(32, 32), (32, 64), (48, 16), (8, 8)])
def test_networks_keep_any_size_that_halves_depth_times(hw):
    cfg, spec = spec_for((3, *hw), depth=3)
    G, D = build_models(spec, "unet")
    a = torch.randn(2, 1, *hw)
    y = G(a)
    assert y.shape == (2, 3, *hw) and y.abs().max() <= 1
    logits = D(torch.cat([a, y], 1))
    assert logits.shape[:2] == (2, 1) and min(logits.shape[2:]) >= 1
    # the published 70x70 PatchGAN at 256 px: three strided convs, a 30x30 map of logits
    _, big = spec_for((3, 256, 256), in_channels=3, depth=8)
    assert build_models(big, "unet")[1](torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)


def test_sizes_that_do_not_halve_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"model.depth: 24x24 images do not halve 4 times .* lower model.depth to 3"):
        spec_for((3, 24, 24), depth=4)
    with pytest.raises(ConfigError, match="model.arch: translation needs a translation architecture \\(resnet_blocks, unet\\), not dcgan"):
        make_spec(make_config({}, p2p_overrides(**{"model.arch": "dcgan"})).model, (3, 32, 32), 0, "pairs", in_channels=1)
    with pytest.raises(ConfigError, match="model.arch: unet needs paired images"):
        make_spec(make_config({}, tiny_overrides(**{"model.arch": "unet"})).model, (1, 16, 16), 0, "image")


def test_the_step_reports_the_losses_computed_by_hand():
    """One pix2pix step's D and G losses equal the formulas on the same batch and weights (non-saturating
    loss: softplus; L1 weight 100; the dropout masks drawn from the same seeds)."""
    cfg = make_config({}, p2p_overrides(**{"train.batch_size": 4, "model.depth": 6, "data.resolution": 64}))  # 6 halvings: one dropout block
    ds = load_dataset(cfg.data)
    p = build_state(cfg, ds)
    assert len(noise_inputs(p.G)) == 1
    from gankit.training.batches import Batches
    from gankit.training.dist import World
    from gankit.training.guard import FiniteGuard
    from gankit.losses import LOSSES
    from gankit.training.steps import STEPS, Tools

    k = Tools(p.G, p.D, LOSSES.get("ns"), Batches(ds, p.device, False, False), FiniteGuard(p.device), World(), nullcontext, slice(0, 4),
              list(p.G.parameters()), list(p.D.parameters()), noise_inputs(p.G))
    # by hand, from copies of the state the step starts from
    order = p.order.state_dict()
    idx = p.order.next(4)
    p.order.load_state_dict(order)
    gen = p.latent_gen.get_state()
    seeds = torch.randint(0, 2**62, (4,), generator=p.latent_gen)
    p.latent_gen.set_state(gen)
    a = ds.inputs[idx].float() / 127.5 - 1
    b = ds.x[idx].float() / 127.5 - 1
    with torch.no_grad(), per_sample_noise(noise_inputs(p.G), seeds):
        fake = p.G(a)
        r, f = p.D(torch.cat([a, b], 1)), p.D(torch.cat([a, fake], 1))
    want_d = F.softplus(-r).mean() + F.softplus(f).mean()
    l1 = (fake - b).abs().mean()
    # G's term is taken after D's update: recompute D on the same fake with D's new weights below
    ok, stats = STEPS.get("pix2pix")(p, k)
    assert ok
    assert torch.allclose(stats["loss_d"], want_d, rtol=1e-5), (stats["loss_d"], want_d)
    assert torch.allclose(stats["l1"], l1, rtol=1e-5)
    with torch.no_grad():
        f_after = p.D(torch.cat([a, fake], 1))
    # G's loss used D after its step; D's batch norm saw the same batches, so recompute in train mode as the step did
    want_g = 100 * l1 + F.softplus(-f_after).mean()
    assert torch.allclose(stats["loss_g"], want_g, rtol=1e-4), (stats["loss_g"], want_g)
    assert float(stats["loss_g"]) > 100 * float(l1)  # the adversarial term is in it


def test_l1_only_has_no_d_step(tmp_path):
    cfg = make_config({}, p2p_overrides(**{"loss.adversarial": 0, "train.steps": 2, "train.sample_every": 10, "train.checkpoint_every": 2,
                                           "train.log_every": 1}))
    d0 = {k: v.clone() for k, v in build_state(cfg, load_dataset(cfg.data)).D.state_dict().items()}
    p = train(cfg, tmp_path / "run", quiet=True)
    assert all(torch.equal(d0[k], v) for k, v in p.D.state_dict().items())  # D never moved
    rec = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "loss_d" not in rec[-1] and rec[-1]["l1"] > 0 and rec[-1]["loss_g"] == pytest.approx(100 * rec[-1]["l1"], rel=1e-4)


def test_a_run_trains_resumes_bit_exactly_and_its_grid_is_what_translate_gives(tmp_path):
    over = {"train.precision": "bf16", "train.channels_last": True}
    full = train(make_config({}, p2p_overrides(**over)), tmp_path / "full", quiet=True)
    train(make_config({}, p2p_overrides(**over, **{"train.steps": 3})), tmp_path / "half", quiet=True)
    resumed = train(make_config({}, p2p_overrides(**over)), tmp_path / "half", resume="auto", quiet=True)
    for name in ("G", "D", "G_ema"):
        a, b = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    # the report's grid (rows: input, output, target) shows what `translate` gives for the same inputs
    lg = load_generator(tmp_path / "full")
    ds = load_dataset(lg.cfg.data)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(lg.cfg.train.seed + 100))[:8].sort().values
    out = translate_tensor(lg.G, ds.inputs[idx].float() / 127.5 - 1)
    grid = np.asarray(Image.open(tmp_path / "full" / "samples" / "step_000006.png"))
    scale = grid.shape[1] // (3 * 34 + 2)
    cell = grid[::scale, ::scale][2:34, 2 + 34:34 + 34]  # first row, middle column
    want = ((out[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(cell, want)
    assert lg.G.training is False  # eval: dropout off; normalisation per image, as in training


def test_jitter_crops_and_flips_a_pair_alike_and_resumes_bit_exactly(tmp_path):
    from gankit.training.batches import jittered

    b = torch.rand(16, 3, 32, 32) * 2 - 1
    seeds = torch.arange(16) * 7919
    jb, ja = jittered(b, seeds, 0.117), jittered(b[:, :1], seeds, 0.117)
    assert torch.equal(ja, jb[:, :1])  # the input gets its target's crop and flip
    assert torch.equal(jb, jittered(b, seeds, 0.117)) and jb.shape == b.shape and jb.abs().max() <= 1
    assert not torch.equal(jittered(b, seeds + 1, 0.117), jb)
    smooth = jittered(torch.linspace(-1, 1, 32).expand(1, 1, 32, 32).repeat(16, 1, 1, 1), seeds, 0.117)
    slopes = (smooth[:, 0, :, -1] - smooth[:, 0, :, 0]).mean(1)  # a left-to-right ramp: flipped ones run right-to-left
    assert (slopes > 0).any() and (slopes < 0).any()
    with pytest.raises(ConfigError, match="data.jitter: applies to translation data"):
        make_config({}, tiny_overrides(**{"data.jitter": 0.1}))
    over = {"data.jitter": 0.12}
    full = train(make_config({}, p2p_overrides(**over)), tmp_path / "full", quiet=True)
    train(make_config({}, p2p_overrides(**over, **{"train.steps": 3})), tmp_path / "half", quiet=True)
    resumed = train(make_config({}, p2p_overrides(**over)), tmp_path / "half", resume="auto", quiet=True)
    plain = train(make_config({}, p2p_overrides()), tmp_path / "plain", quiet=True)
    for name in ("G", "D"):
        a, b_, c = getattr(full, name).state_dict(), getattr(resumed, name).state_dict(), getattr(plain, name).state_dict()
        assert all(torch.equal(a[key], b_[key]) for key in a), name
        assert not all(torch.equal(a[key], c[key]) for key in a), name  # the jitter changed what was learnt

def test_rectangular_training_images(tmp_path):
    """data.resolution: [H, W] trains translation on rectangles: images scaled to cover them, centre-cropped."""
    from gankit.data.images import resize_crop

    wide = Image.fromarray(np.arange(60 * 100, dtype=np.uint8).reshape(60, 100) % 251)
    assert resize_crop(wide, (16, 32)).size == (32, 16) and resize_crop(wide, 30).size == (30, 30)
    assert np.array_equal(np.asarray(resize_crop(wide, (30, 50))), np.asarray(wide.resize((50, 30), Image.Resampling.LANCZOS)))
    cfg = make_config({}, p2p_overrides(**{"data.resolution": "[16,32]", "train.steps": 4, "train.checkpoint_every": 2}))
    p = train(cfg, tmp_path / "run", quiet=True)
    assert p.spec.shape == (3, 16, 32)
    resumed = train(make_config({}, ["train.steps=6"] + p2p_overrides(**{"data.resolution": "[16,32]"})), tmp_path / "run",
                    resume="auto", quiet=True)
    assert resumed.step == 6 and resumed.cfg.data.size == (16, 32)
    out = gankit.load(tmp_path / "run").translate(np.zeros((16, 32, 1), np.uint8))
    assert out.shape == (16, 32, 3)
    with pytest.raises(ConfigError, match=r"data.resolution: \[H, W\] \(a rectangle\) is for translation"):
        make_config({}, tiny_overrides(**{"data.resolution": "[16,32]"}))

@pytest.mark.parametrize("arch,depth", [("unet", 2), ("unet", 3), ("unet", 4), ("resnet_blocks", 1), ("resnet_blocks", 3)])
def test_context_covers_what_an_output_pixel_depends_on(arch, depth):
    _, spec = spec_for((3, 128, 128), depth=depth, arch=arch)
    G, _ = build_models(spec, arch)
    G.eval()
    for m in G.modules():  # statistics fixed, as tiled translation fixes them: only the convolutions reach
        if isinstance(m, InstanceNorm):
            m.fixed = (torch.zeros(1, m.weight.shape[0], 1, 1), torch.ones(1, m.weight.shape[0], 1, 1))
    a = torch.randn(1, 1, 256, 256, requires_grad=True)
    G(a)[0, :, 128:130, 128:130].sum().backward()
    rows = (a.grad[0, 0].abs() > 0).nonzero()[:, 0]
    reach = max(128 - int(rows.min()), int(rows.max()) - 129)
    assert G.context - G.multiple < reach <= G.context, (reach, G.context)


@pytest.mark.parametrize("arch,depth", [("unet", 3), ("resnet_blocks", 2)])
def test_tiles_equal_the_whole_image_and_with_less_overlap_stay_close(arch, depth):
    _, spec = spec_for((3, 32, 32), depth=depth, arch=arch)
    torch.manual_seed(0)
    G, _ = build_models(spec, arch)
    for m in G.modules():  # gains and shifts of a trained net, not the initial ones
        if isinstance(m, InstanceNorm):
            m.weight.data.uniform_(0.5, 2)
            m.bias.data.uniform_(-0.5, 0.5)
    a = torch.rand(2, 1, 100, 150) * 2 - 1  # not a multiple of 8: padded, then cropped back
    a[1, :, 40:] = -0.8  # images unlike each other (statistics are per image)
    whole = translate_tensor(G, a, tile=10**6)
    assert whole.shape == (2, 3, 100, 150) and whole.std() > 0.05
    tile = 2 * G.context + 16
    assert len(window_plan(104, tile, 2 * G.context)) > 1 and len(window_plan(152, tile, 2 * G.context)) > 1  # it did tile
    tiled = translate_tensor(G, a, tile=tile)
    assert (tiled - whole).abs().max() < 1e-5, (tiled - whole).abs().max()
    assert G.training and all(m.fixed is None for m in G.modules() if isinstance(m, InstanceNorm))  # left as it was
    # half the overlap exact tiling needs: blended across the overlaps, close but not equal (measured, unet:
    # mean error 0.0056, max 0.091, outputs' std 0.11; resnet_blocks: 0.019, 0.25, std 0.21)
    rough = translate_tensor(G, a, tile=64, overlap=G.context)
    err = (rough - whole).abs()
    assert 1e-3 < err.max() < 1.5 * whole.std() and err.mean() < 0.12 * whole.std(), (err.max(), err.mean(), whole.std())
    assert tiled.shape == whole.shape


def test_translate_command_and_api_translate_any_size(tmp_path, capsys):
    cfg = make_config({}, p2p_overrides(**{"train.steps": 2, "train.checkpoint_every": 2}))
    train(cfg, tmp_path / "run", quiet=True)
    rng = np.random.default_rng(0)
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (40, 72, 3), dtype=np.uint8)).save(tmp_path / "in" / "wide.png")
    Image.fromarray(rng.integers(0, 255, (17, 9), dtype=np.uint8)).save(tmp_path / "in" / "sub" / "small.jpg")
    assert main(["translate", str(tmp_path / "run"), str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 0
    wide, small = Image.open(tmp_path / "out" / "wide.png"), Image.open(tmp_path / "out" / "sub" / "small.png")
    assert (wide.size, wide.mode, small.size, small.mode) == ((72, 40), "RGB", (9, 17), "RGB")
    g = gankit.load(tmp_path / "run")
    grey = np.asarray(Image.open(tmp_path / "in" / "wide.png").convert("L"))
    y = g.translate(grey)
    assert y.shape == (40, 72, 3) and y.dtype == np.uint8
    assert np.array_equal(y, np.asarray(wide))  # the API and the command agree
    assert [o.shape for o in g.translate([grey, grey[:20, :30]])] == [(40, 72, 3), (20, 30, 3)]
    with pytest.raises(GankitError, match=r"images\[0\]: expected uint8 \[H, W, 1\] .* got uint8 \[40, 72, 3\]"):
        g.translate(np.asarray(wide))
    with pytest.raises(GankitError, match="use translate"):
        g.sample(4)


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_paired_folders_and_side_by_side_files(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        a, b = rng.integers(0, 255, (16, 24), dtype=np.uint8), rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)
        _write(tmp_path / "f" / "A" / f"{i}.png", a)
        _write(tmp_path / "f" / "B" / f"{i}.jpg", b)  # names match without their extensions
        _write(tmp_path / "ab" / f"{i}.png", np.concatenate([np.stack([a] * 3, -1), b], 1))
    cfg = make_config({}, p2p_overrides(**{"data.source": str(tmp_path / "f"), "data.pairs": "folders", "data.limit": "null"}))
    ds = load_dataset(cfg.data)
    assert ds.kind == "pairs" and ds.inputs.shape == (4, 1, 16, 24) and ds.x.shape == (4, 3, 16, 24)
    assert np.array_equal(ds.inputs[2, 0].numpy(), np.asarray(Image.open(tmp_path / "f" / "A" / "2.png")))
    ab = load_dataset(make_config({}, p2p_overrides(**{"data.source": str(tmp_path / "ab"), "data.pairs": "ab", "data.limit": "null",
                                                       "data.direction": "BtoA", "data.resolution": 16})).data)
    assert ab.inputs.shape == (4, 3, 16, 16) and ab.x.shape == (4, 3, 16, 16)
    assert ds.fingerprint() != ab.fingerprint()


def test_bad_pairs_are_one_line_naming_the_culprit(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i in range(5):
        _write(tmp_path / "p" / "A" / f"a{i}.png", rng.integers(0, 255, (16, 16), dtype=np.uint8))
        _write(tmp_path / "p" / "B" / f"{'a' if i < 1 else 'b'}{i}.png", rng.integers(0, 255, (16, 16), dtype=np.uint8))
    (tmp_path / "e" / "A").mkdir(parents=True)
    _write(tmp_path / "e" / "B" / "x.png", np.zeros((16, 16), np.uint8))
    _write(tmp_path / "s" / "A" / "x.png", np.zeros((16, 16), np.uint8))
    _write(tmp_path / "s" / "B" / "x.png", np.zeros((16, 20), np.uint8))
    cases = [
        (["data.source=" + str(tmp_path / "p")], "the names in A/ and B/ do not match: 4 in A/ without a partner in B/ (a1, a2, a3 and 1 more); "
         "4 in B/ without a partner in A/ (b1, b2, b3 and 1 more)"),
        (["data.source=" + str(tmp_path / "e")], str(tmp_path / "e" / "A") + ": no images found"),
        (["data.source=" + str(tmp_path / "s")], "x.png is 16x16 but its partner " + str(tmp_path / "s" / "B" / "x.png") + " is 20x16"),
        (["data.source=" + str(tmp_path / "missing")], "no such file or folder"),
    ]
    for extra, msg in cases:
        argv = ["train", *p2p_overrides(**{"data.pairs": "folders", "data.limit": "null", "train.batch_size": 2}), *extra,
                "--out", str(tmp_path / "run")]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and msg in err, err
    # the family and the data must agree
    for over, msg in (({"data.pairs": ""}, "data.pairs: model.family=pix2pix needs paired data"),
                      ({"model.family": "gan", "model.arch": "dcgan"}, "data.pairs: paired data is for translation"),
                      ({"data.source": "digits", "data.resolution": 16}, "data.pairs=grey (colourisation) needs colour targets")):
        assert main(["train", *p2p_overrides(**over), "--out", str(tmp_path / "run2"), "--dry-run"]) == 2
        assert msg in capsys.readouterr().err
    # translate on a generation run, and sample on a translation run
    train(make_config({}, tiny_overrides(**{"train.steps": 1, "train.checkpoint_every": 1})), tmp_path / "gen", quiet=True)
    _write(tmp_path / "x.png", np.zeros((16, 16), np.uint8))
    assert main(["translate", str(tmp_path / "gen"), str(tmp_path / "x.png"), "--out", str(tmp_path / "o")]) == 2
    assert "a generation run (model.family=gan) has no input image to translate" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_psnr_and_ssim_equal_their_definitions():
    from scipy.ndimage import gaussian_filter

    from gankit.metrics.paired import l1, psnr, ssim

    rng = np.random.default_rng(0)
    t = rng.integers(0, 256, (3, 2, 20, 24)).astype(np.float64)
    o = np.clip(0.5 * t + 60 + rng.normal(0, 40, t.shape), 0, 255).round()
    tt, oo = (torch.tensor(x) / 127.5 - 1 for x in (t, o))
    mse = (((o - t) / 255) ** 2).reshape(3, -1).mean(1)
    assert psnr(oo, tt) == pytest.approx(np.mean(10 * np.log10(1 / mse)), rel=1e-7)
    assert l1(oo, tt) == pytest.approx(np.abs(o - t).mean() / 255, rel=1e-7)
    assert psnr(tt, tt) == 100.0 and ssim(tt, tt) == pytest.approx(1.0)

    def ref_ssim(x, y):  # Wang et al. with scipy's Gaussian filter, valid windows only (radius 5)
        blur = lambda a: gaussian_filter(a, 1.5, truncate=5 / 1.5)[5:-5, 5:-5]  # noqa: E731
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        c1, c2 = 0.01**2, 0.03**2
        return (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean()

    want = np.mean([np.mean([ref_ssim(o[i, c] / 255, t[i, c] / 255) for c in range(2)]) for i in range(3)])
    assert ssim(oo, tt) == pytest.approx(want, rel=1e-7)
    assert 0.2 < want < 0.9


def test_eval_of_a_translation_run_scores_its_outputs_against_the_targets(tmp_path, capsys):
    train(make_config({}, p2p_overrides(**{"train.steps": 2, "train.checkpoint_every": 2})), tmp_path / "run", quiet=True)
    assert main(["eval", str(tmp_path / "run"), "--metrics", "l1,psnr,ssim", "--n", "20"]) == 0
    out = capsys.readouterr().out
    assert "20 translated, each against its target from photo_crops (grey -> image)" in out
    res = json.loads((tmp_path / "run" / "eval.json").read_text())["evaluations"][-1]
    lg = load_generator(tmp_path / "run")
    ds = load_dataset(lg.cfg.data)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:20].sort().values
    from gankit.metrics.paired import psnr
    from gankit.analysis.paired import translate_rows

    assert res["psnr"] == pytest.approx(psnr(translate_rows(lg.G, ds, idx), ds.to_float(idx)))
    assert 0 < res["l1"] < 1 and 0 < res["ssim"] < 1 and set(res) >= {"l1", "psnr", "ssim", "provenance"} and "fid" not in res
    assert res["provenance"]["n_fake"] == 20 and res["provenance"]["step"] == 2


def test_evaluation_during_training_scores_held_out_pairs_as_gankit_eval_does(tmp_path, capsys):
    held_out = tmp_path / "held_out.npz"
    np.savez(held_out, images=np.random.default_rng(0).integers(0, 256, (24, 3, 32, 32), dtype=np.uint8))
    over = {"train.steps": 4, "train.checkpoint_every": 4, "eval.every": 2, "eval.n": 12, "eval.real": str(held_out),
            "eval.metrics": "[l1,psnr,ssim]"}
    train(make_config({}, p2p_overrides(**over)), tmp_path / "run", quiet=True)
    evals = [r for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) if "eval_psnr" in r]
    assert [r["step"] for r in evals] == [2, 4] and all(r["eval_n"] == 12 for r in evals)
    # the last one is `gankit eval` of the final checkpoint on the same held-out pairs
    assert main(["eval", str(tmp_path / "run"), "--metrics", "l1,psnr,ssim", "--n", "12", "--real", str(held_out)]) == 0
    res = json.loads((tmp_path / "run" / "eval.json").read_text())["evaluations"][-1]
    for k in ("l1", "psnr", "ssim"):
        assert evals[-1][f"eval_{k}"] == pytest.approx(res[k], rel=1e-6), k
    assert "During training: psnr" in (tmp_path / "run" / "report.html").read_text()
    # mistakes are one line, before any training
    for over2, culprit in (({"eval.metrics": "[precision]"}, "eval.metrics: ['precision'] not for a translation run"),
                           ({"eval.real": str(tmp_path / "missing")}, "eval.real:")):
        with pytest.raises(GankitError, match=culprit.replace("[", r"\[").replace("]", r"\]")):
            train(make_config({}, p2p_overrides(**(over | over2))), tmp_path / "bad", quiet=True)
        assert not (tmp_path / "bad" / "metrics.jsonl").exists()


def cyc_overrides(**extra) -> list[str]:
    """Seconds long: CycleGAN between the grey and colour halves of 64 photo crops, 2 residual blocks of width 8."""
    return p2p_overrides(**{"model.family": "cyclegan", "model.arch": "resnet_blocks", "model.depth": 2, "loss.name": "lsgan",
                            "loss.identity": 0, "loss.pool": 5, "train.batch_size": 4, **extra})


def test_cyclegan_networks_go_both_ways_at_any_size():
    cfg = make_config({}, cyc_overrides())
    spec = make_spec(cfg.model, (3, 32, 32), 0, "pairs", in_channels=1)
    G, D = build_models(spec, "resnet_blocks", cycle=True)
    for hw in ((32, 32), (24, 40)):
        a, b = torch.randn(2, 1, *hw), torch.randn(2, 3, *hw)
        assert G(a).shape == G.ab(a).shape == (2, 3, *hw) and G.ba(b).shape == (2, 1, *hw)
        assert D.on_a(a).shape[:2] == D.on_b(b).shape[:2] == (2, 1)


def test_cyclegan_step_reports_the_losses_computed_by_hand():
    cfg = make_config({}, cyc_overrides(**{"loss.identity": 0.5, "data.pairs": "edges", "loss.pool": 0, "data.channels": 1}))
    ds = load_dataset(cfg.data)
    p = build_state(cfg, ds)
    from gankit.training.batches import Batches
    from gankit.training.dist import World
    from gankit.training.guard import FiniteGuard
    from gankit.losses import LOSSES
    from gankit.training.steps import STEPS, Tools

    k = Tools(p.G, p.D, LOSSES.get("lsgan"), Batches(ds, p.device, False, False), FiniteGuard(p.device), World(), nullcontext, slice(0, 4),
              list(p.G.parameters()), list(p.D.parameters()), noise_inputs(p.G))
    order = p.order.state_dict()
    idx = p.order.next(4)
    p.order.load_state_dict(order)
    half = len(ds) // 2
    a = ds.inputs[idx % half].float() / 127.5 - 1  # A: edges of the first half; B: images of the second
    b = ds.x[half + idx % (len(ds) - half)].float() / 127.5 - 1
    G, D = p.G, p.D
    with torch.no_grad():
        fb, fa = G.ab(a), G.ba(b)
        cyc = (G.ba(fb) - a).abs().mean() + (G.ab(fa) - b).abs().mean()
        idt = (G.ab(b) - b).abs().mean() + (G.ba(a) - a).abs().mean()
        adv = 0.5 * ((D.on_b(fb) - 1) ** 2).mean() + 0.5 * ((D.on_a(fa) - 1) ** 2).mean()
        # D's step comes after G's, with D as it was, judging G's outputs from before G's update (pool off)
        want_db = 0.5 * ((D.on_b(b) - 1) ** 2).mean() + 0.5 * (D.on_b(fb) ** 2).mean()
    want_g = adv + 10 * cyc + 5 * idt  # loss.adversarial 1, loss.cycle 10, identity 0.5 of it
    ok, stats = STEPS.get("cyclegan")(p, k)
    assert ok
    assert torch.allclose(stats["loss_g"], want_g, rtol=1e-5) and torch.allclose(stats["cycle"], cyc, rtol=1e-5)
    assert torch.allclose(stats["loss_d_b"], want_db, rtol=1e-5)


def test_the_image_pool_fills_then_swaps_half_the_time():
    from types import SimpleNamespace

    from gankit.training.dist import World
    from gankit.training.steps import image_pool

    p = SimpleNamespace(cfg=make_config({}, cyc_overrides(**{"loss.pool": 4})), extra={}, latent_gen=torch.Generator().manual_seed(0))
    k = SimpleNamespace(world=World(), mine=slice(0, 2))
    batches = [torch.arange(2 * i, 2 * i + 2.0).view(2, 1, 1, 1).expand(2, 1, 2, 2) for i in range(200)]  # every image its own value
    shown = [image_pool(p, k, "pool", x) for x in batches]
    assert torch.equal(shown[0], batches[0]) and torch.equal(shown[1], batches[1])  # filling: the new ones
    assert p.extra["pool"].shape == (4, 1, 2, 2)
    old = sum(int((s[:, 0, 0, 0] < 2 * i).sum()) for i, s in enumerate(shown[2:], start=2))
    assert 0.4 < old / (2 * 198) < 0.6  # then an earlier image half of the time
    stored = p.extra["pool"][:, 0, 0, 0]
    assert stored.max() > 380 and len(set(stored.tolist())) == 4  # recent images replace old ones
    assert image_pool(SimpleNamespace(**{**vars(p), "cfg": make_config({}, cyc_overrides(**{"loss.pool": 0}))}), k, "x", batches[3]) is not None


def test_cyclegan_trains_resumes_bit_exactly_and_translates_both_ways(tmp_path, capsys):
    over = {"train.precision": "bf16", "train.channels_last": True}
    full = train(make_config({}, cyc_overrides(**over)), tmp_path / "full", quiet=True)
    assert full.extra["pool_a"].shape[0] == 5  # the pools filled (and then swapped)
    train(make_config({}, cyc_overrides(**over, **{"train.steps": 3})), tmp_path / "half", quiet=True)
    resumed = train(make_config({}, cyc_overrides(**over)), tmp_path / "half", resume="auto", quiet=True)
    for name in ("G", "D", "G_ema"):
        a, b = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert torch.equal(full.extra["pool_b"], resumed.extra["pool_b"])
    g = gankit.load(tmp_path / "full")
    colour = np.random.default_rng(0).integers(0, 255, (20, 28, 3), dtype=np.uint8)
    grey = g.translate(colour, direction="BtoA")
    assert grey.shape == (20, 28, 1) and g.translate(grey).shape == (20, 28, 3)
    assert main(["eval", str(tmp_path / "full"), "--metrics", "cycle,psnr", "--n", "16"]) == 0
    res = json.loads((tmp_path / "full" / "eval.json").read_text())["evaluations"][-1]
    assert 0 < res["cycle"] < 1 and res["psnr"] > 0


def test_unpaired_folders_and_their_mistakes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i in range(7):
        _write(tmp_path / "u" / "A" / f"x{i}.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    for i in range(3):
        _write(tmp_path / "u" / "B" / f"other{i}.jpg", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    cfg = make_config({}, cyc_overrides(**{"data.source": str(tmp_path / "u"), "data.pairs": "unpaired", "data.limit": "null",
                                           "train.batch_size": 2, "train.steps": 2, "train.checkpoint_every": 2, "loss.identity": 0.5}))
    ds = load_dataset(cfg.data)
    assert (ds.paired, len(ds), ds.inputs.shape[0], ds.x.shape[0]) == (False, 7, 7, 3)
    train(cfg, tmp_path / "run", quiet=True)
    assert main(["eval", str(tmp_path / "run"), "--metrics", "cycle,psnr", "--n", "10"]) == 0
    res = json.loads((tmp_path / "run" / "eval.json").read_text())["evaluations"][-1]
    assert "cycle" in res and "psnr" not in res  # unpaired: no targets to compare with
    capsys.readouterr()
    _write(tmp_path / "v" / "A" / "a.png", np.zeros((16, 16), np.uint8))
    _write(tmp_path / "v" / "B" / "b.png", np.zeros((16, 24), np.uint8))
    for over, msg in (({"data.source": str(tmp_path / "v")}, "the images in A/ are 16x16 but those in B/ 24x16; set data.resolution"),
                      ({"data.source": str(tmp_path / "u"), "model.family": "pix2pix", "model.arch": "unet"},
                       "data.pairs: pix2pix learns from pairs"),
                      ({"data.source": "photo_crops", "data.pairs": "grey", "loss.identity": 0.5},
                       "loss.identity: the identity terms feed each domain's images to the other generator, but A has 1 channel(s) and B 3")):
        argv = ["train", *cyc_overrides(**{"data.pairs": "unpaired", "data.limit": "null", "train.batch_size": 2, **over}),
                "--out", str(tmp_path / "bad"), "--dry-run"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and msg in err, err
    p2p = tmp_path / "p2p"
    train(make_config({}, p2p_overrides(**{"train.steps": 1, "train.checkpoint_every": 1})), p2p, quiet=True)
    assert main(["translate", str(p2p), str(tmp_path / "u" / "A"), "--out", str(tmp_path / "o"), "--direction", "BtoA"]) == 2
    assert "a pix2pix run translates one way only" in capsys.readouterr().err


def test_export_onnx_translates_any_size_as_pytorch_does(tmp_path, capsys):
    from .conftest import need
    import importlib.util

    need("onnxruntime and onnxscript (the onnx extra)", all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnxscript")))
    import onnxruntime as ort

    train(make_config({}, p2p_overrides(**{"train.steps": 2, "train.checkpoint_every": 2})), tmp_path / "run", quiet=True)
    assert main(["export", str(tmp_path / "run"), "--format", "onnx", "--out", str(tmp_path / "exp")]) == 0
    meta = json.loads((tmp_path / "exp" / "generator.json").read_text())
    assert meta["translation"] == {"input_channels": 1, "output_channels": 3, "multiple": 8, "context": 24, "directions": ["AtoB"]}
    lg = load_generator(tmp_path / "run")
    session = ort.InferenceSession(str(tmp_path / "exp" / "generator.onnx"), providers=["CPUExecutionProvider"])
    for hw in ((32, 32), (24, 56)):
        a = torch.rand(2, 1, *hw) * 2 - 1
        got = session.run(None, {"image": a.numpy()})[0]
        assert got.shape == (2, 3, *hw) and np.abs(got - translate_tensor(lg.G, a).numpy()).max() < 1e-4
    grey = np.random.default_rng(1).integers(0, 255, (30, 50), dtype=np.uint8)
    assert np.array_equal(gankit.load(tmp_path / "exp").translate(grey), gankit.load(tmp_path / "run").translate(grey))
    assert "translator 1 -> 3 channels (AtoB)" in repr(gankit.load(tmp_path / "exp"))


def test_a_corrupt_file_stops_the_load_naming_it_or_its_pair_is_skipped(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i in range(4):
        _write(tmp_path / "p" / "A" / f"{i}.png", rng.integers(0, 255, (16, 16), dtype=np.uint8))
        _write(tmp_path / "p" / "B" / f"{i}.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    (tmp_path / "p" / "B" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    over = {"data.source": str(tmp_path / "p"), "data.pairs": "folders", "data.limit": "null", "train.batch_size": 2}
    assert main(["train", *p2p_overrides(**over), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "p" / "B" / "2.png") in err, err
    ds = load_dataset(make_config({}, p2p_overrides(**over, **{"data.on_bad_image": "skip"})).data)
    assert len(ds) == 3 and ds.skipped == 1 and "skipped 1 pair(s)" in ds.notes[0]
    assert str(tmp_path / "p" / "A" / "2.png") in ds.skipped_files[0]


def test_compare_puts_translation_runs_side_by_side_with_evals_figures(tmp_path, capsys):
    over = {"train.steps": 2, "train.checkpoint_every": 2}
    train(make_config({}, p2p_overrides(**over)), tmp_path / "gan", quiet=True)
    train(make_config({}, p2p_overrides(**over, **{"loss.adversarial": 0})), tmp_path / "l1", quiet=True)
    runs = [str(tmp_path / "gan"), str(tmp_path / "l1")]
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp"), "--metrics", "l1,psnr,ssim", "--n", "16"]) == 0
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["loss"] for r in rows] == ["ns", "L1 only"]
    for r, run in zip(rows, runs):
        alone = gankit.evaluate(run, metrics=["l1", "psnr", "ssim"], n=16)
        assert {k: r["metrics"][k] for k in ("l1", "psnr", "ssim")} == {k: alone[k] for k in ("l1", "psnr", "ssim")}
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| run | family | loss | L1 | PSNR | SSIM |" in md and "FID" not in md.splitlines()[0]
    assert (tmp_path / "cmp" / "compare.png").is_file() and "translates the same 16 inputs" in (tmp_path / "cmp" / "compare.html").read_text()
    capsys.readouterr()
    gen = tmp_path / "digits"
    train(make_config({}, tiny_overrides(**{"train.steps": 2, "train.checkpoint_every": 2})), gen, quiet=True)
    for args, msg in [([runs[0], str(gen)], "translation runs (pix2pix, cyclegan) and generation runs are measured differently"),
                      ([runs[0], "--metrics", "fid,pr"], "['pr'] are for generation runs"),
                      ([str(gen), "--metrics", "psnr"], "['psnr'] are for translation runs")]:
        assert main(["compare", *args, "--out", str(tmp_path / "x"), "--n", "16"]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and "\n" not in err, err
