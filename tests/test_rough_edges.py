"""What a new user hits on the command line: each case gets one clear line, or does what it says."""
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.config import load_yaml, make_config
from gankit.analysis.health import HealthMonitor
from gankit.training.loop import ema_beta, train
from gankit.metrics import core

from .conftest import tiny_overrides


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cond") / "run"
    train(make_config({}, tiny_overrides(**{"model.conditional": True})), out, quiet=True)
    return out


# 1. --resume auto with nothing to resume, and a bare `gankit train`
def test_resume_auto_without_a_checkpoint_or_config_is_refused(tmp_path, capsys):
    assert main(["train", "--resume", "auto", "--out", str(tmp_path / "typo")]) == 2
    assert _err_line(capsys) == f"gankit: error: {tmp_path / 'typo'}: no checkpoint to resume"
    assert not (tmp_path / "typo").exists()
    assert main(["train"]) == 2
    assert "give a config" in _err_line(capsys)


# 2. interpolation: the label is honoured, and each limit refused
def test_interpolation_honours_the_label_and_refuses_limits(cond_run, tmp_path, capsys, monkeypatch):
    import gankit.artefact.loader as loader

    seen = []
    real_load = loader.load_generator

    def spy_load(*a, **k):
        lg = real_load(*a, **k)
        inner = lg.G

        class Spy(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = inner

            def forward(self, z, y):
                seen.append(y.clone())
                return self.inner(z, y)

        lg.G = Spy()
        return lg

    monkeypatch.setattr(loader, "load_generator", spy_load)
    assert main(["sample", str(cond_run), "--interpolate", "3", "--label", "7", "--out", str(tmp_path / "w.gif")]) == 0
    assert seen and all(bool((y == 7).all()) and len(y) == 16 for y in seen)
    with Image.open(tmp_path / "w.gif") as im:
        assert im.n_frames == 36
    capsys.readouterr()
    assert main(["sample", str(cond_run), "--interpolate", "3", "--n", "65", "--out", str(tmp_path / "b.gif")]) == 2
    assert "--n: an interpolation animates at most 64" in _err_line(capsys)
    assert main(["sample", str(cond_run), "--interpolate", "1", "--out", str(tmp_path / "c.gif")]) == 2
    assert "--interpolate: needs at least 2 key points" in _err_line(capsys)


# 3, 4. outputs: unwritable places are refused before work; grids in JPEG; a GIF needs --interpolate
def test_sample_outputs(cond_run, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["sample", str(cond_run), "--out", str(blocker / "g.png")]) == 2
    assert "--out: " in _err_line(capsys)
    assert main(["compare", str(cond_run), "--out", str(blocker / "cmp"), "--n", "20"]) == 2
    assert "--out: " in _err_line(capsys)
    assert main(["sample", str(cond_run), "--n", "4", "--out", str(tmp_path / "x.jpg")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "x.jpg").is_file() and "step 6" in out  # which checkpoint it used
    with Image.open(tmp_path / "x.jpg") as im:
        assert im.format == "JPEG"
    assert main(["sample", str(cond_run), "--out", str(tmp_path / "x.gif")]) == 2
    assert "add --interpolate" in _err_line(capsys) and not (tmp_path / "x.gif").exists()
    assert main(["sample", str(cond_run), "--out", str(tmp_path / "x.tiff")]) == 2
    assert "unknown format .tiff" in _err_line(capsys)


# 5. KID: a real spread at small n; the note on negative values; a weak classifier is named
def test_kid_spread_is_real_at_small_n():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 16)), rng.standard_normal((300, 16))
    mean, std = core.kid(a, b, subsets=50)
    assert std > 0 and abs(mean) < 5 * std  # same distribution: scatters around 0
    _, std_shifted = core.kid(a, b + 1.0, subsets=50)
    assert std_shifted > 0


def test_a_weak_feature_classifier_is_named(tmp_path, capsys):
    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.analysis.evaluate import evaluate_samples

    ds = load_dataset(DataConfig(source="digits"))
    ds.labels = torch.from_numpy(np.random.default_rng(0).integers(0, 10, len(ds)))  # labels unrelated to the images
    ds.extra.clear()
    fake = ds.to_float(torch.arange(200))
    res = evaluate_samples(fake, ds, ["fid", "kid", "classes"], "classifier", 0)
    assert res["classifier_val_acc"] < 0.5
    assert len(res["warnings"]) == 1 and "held-out accuracy" in res["warnings"][0] and "--features inception" in res["warnings"][0]
    assert "warning: the" in capsys.readouterr().err


# 6. compare --configs: data and --real are checked before the first minute of training
def test_compare_checks_data_and_real_before_training(tmp_path, capsys, monkeypatch):
    import gankit.training.loop

    def no_training(*a, **k):
        raise AssertionError("trained before checking")

    monkeypatch.setattr(gankit.training.loop, "train", no_training)
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("data: {source: digits, resolution: 16}\nmodel: {width: 8, z_dim: 8}\n")
    b.write_text("data: {source: mnist5k, resolution: 16}\nmodel: {width: 8, z_dim: 8}\n")
    assert main(["compare", "--configs", str(a), str(b), "--budget-minutes", "1", "--out", str(tmp_path / "c")]) == 2
    assert "b trains on other data" in _err_line(capsys)
    colour = tmp_path / "colour.npz"
    np.savez(colour, images=np.zeros((20, 16, 16, 3), np.uint8))
    assert main(["compare", "--configs", str(a), "--budget-minutes", "1", "--real", str(colour), "--out", str(tmp_path / "c")]) == 2
    assert f"--real: {colour} gives 3x16x16 at a's data settings, but a generates 1x16x16" in _err_line(capsys)


# 8. a start line and plain progress lines when output is not a terminal; --threads on other commands
def test_training_output_without_a_terminal(tmp_path, capsys):
    assert main(["train", *tiny_overrides(), "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"data: 1797 images 1x16x16, 10 classes from digits; gan dcgan; device cpu, 2 threads; run folder {tmp_path / 'r'}"
    steps = [x for x in err if x.startswith("step ")]
    assert [x.split()[1] for x in steps] == ["2/6", "4/6", "6/6"] and "img/s" in steps[0]
    assert main(["sample", str(tmp_path / "r"), "--threads", "1", "--out", str(tmp_path / "g.png")]) == 0
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)


# 9. doctor on a run too short to judge
def test_doctor_says_too_early(tmp_path):
    from gankit.analysis.health import doctor

    train(make_config({}, tiny_overrides()), tmp_path, quiet=True)
    text, n = doctor(tmp_path)
    assert n == 0 and text.splitlines()[-1] == "verdict: too early to judge (6 steps; the detectors start after step 8)"


# 10. errors name the right thing
def test_errors_name_what_the_user_gave(cond_run, tmp_path, capsys):
    jpg = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(jpg)
    assert main(["sample", str(jpg), "--out", str(tmp_path / "g.png")]) == 2
    assert _err_line(capsys).endswith(f"{jpg}: not a gankit checkpoint (a JPEG image); give a run folder or a checkpoints/ckpt_*.pt file")
    assert main(["sample", str(cond_run), "--label", "10", "--out", str(tmp_path / "g.png")]) == 2
    assert "--label: must be 0..9 (the model has 10 classes), got 10" in _err_line(capsys)
    assert main(["eval", str(cond_run), "--real", "nope", "--n", "20"]) == 2
    line = _err_line(capsys)
    assert "--real: unknown data source 'nope'" in line and "data.source" not in line
    assert main(["sample", str(cond_run), "--device", "cuda", "--out", str(tmp_path / "g.png")]) == 2
    line = _err_line(capsys)
    assert line.startswith("gankit: error: --device: ") and "train.device" not in line


# 11. labels: remapped and shown; why a folder has none
def test_array_labels_are_remapped_and_shown(tmp_path, capsys):
    data = tmp_path / "x.npz"
    rng = np.random.default_rng(0)
    np.savez(data, images=rng.integers(0, 256, (40, 16, 16), dtype=np.uint8), labels=100 + np.arange(40) % 10)
    assert main(["train", *tiny_overrides(**{"data.source": data, "model.conditional": True}), "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "labels 100..109 (10 values) are classes 0..9 (100->0, 101->1" in err
    state = torch.load(sorted((tmp_path / "r" / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    assert state["data"]["num_classes"] == 10 and state["data"]["class_names"] == [str(100 + i) for i in range(10)]


@pytest.mark.parametrize("layout, why", [
    ({"a": 4}, "has a single class subfolder (a)"),
    ({"a": 4, "b": 4, ".": 2}, "2 image(s) lie directly in"),
    ({"a": 4, "b": 0}, "class subfolder(s) b hold no images"),
])
def test_a_folder_without_labels_says_why(tmp_path, capsys, layout, why):
    src = tmp_path / "imgs"
    for sub, n in layout.items():
        (src / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("L", (16, 16), 10 * i).save(src / sub / f"{sub.strip('.')}{i}.png")
    assert main(["train", *tiny_overrides(**{"data.source": src, "model.conditional": True, "train.batch_size": 2}),
                 "--dry-run"]) == 2
    line = _err_line(capsys)
    assert "model.conditional: the data has no class labels (" in line and why in line


# 12. --dry-run runs every check that needs no training
@pytest.mark.parametrize("override, key", [("loss.name=foo", "loss.name"), ("model.arch=resnet50", "model.arch"),
                                           ("data.resolution=17", "data.resolution"), ("train.device=cuda", "train.device"),
                                           ("data.source=nope", "data.source")])
def test_dry_run_refuses_what_the_run_would(capsys, override, key):
    if override == "train.device=cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["train", *tiny_overrides(), override, "--dry-run"]) == 2
    assert _err_line(capsys).startswith(f"gankit: error: {key}: ")


# 13. G_ema of a short run: the half-life ramps up with the images generated
def test_ema_ramps_up_so_a_short_run_is_not_its_random_start(tmp_path):
    t = make_config({}, ["train.batch_size=64", "train.ema_halflife=10000"]).train
    assert ema_beta(t, 1) == pytest.approx(0.5 ** (64 / (0.05 * 64)))  # half-life 3.2 images: almost G itself
    assert ema_beta(t, 10_000) == pytest.approx(0.5 ** (64 / 10_000))  # the full half-life once 200,000 images are made
    t0 = make_config({}, ["train.ema_rampup=0"]).train
    assert ema_beta(t0, 1) == pytest.approx(0.5 ** (64 / 10_000))
    torch.manual_seed(0)
    over = tiny_overrides(**{"train.steps": 50, "train.ema_halflife": 10000, "train.log_every": 50, "train.sample_every": 50,
                             "train.checkpoint_every": 50})
    p = train(make_config({}, over), tmp_path, quiet=True)
    ema, g = torch.cat([x.flatten() for x in p.G_ema.parameters()]), torch.cat([x.flatten() for x in p.G.parameters()])
    from gankit.models import build_models

    torch.manual_seed(p.cfg.train.seed)
    g0, _ = build_models(p.spec, p.cfg.model.arch)
    start = torch.cat([x.flatten() for x in g0.parameters()])
    assert (ema - g).norm() < 0.2 * (start - g).norm()  # G_ema follows the trained G, not the initial weights


# 14. resuming a finished run with new settings trains nothing and changes nothing
def test_resume_of_a_finished_run_keeps_its_config(tmp_path, capsys):
    over = tiny_overrides()
    assert main(["train", *over, "--out", str(tmp_path)]) == 0
    before = (tmp_path / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", *over, "train.lr_g=0.001", "--resume", "auto", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "config.yaml").read_text() == before
    assert "already finished at step 6" in capsys.readouterr().err


# 15.
def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == "gankit 0.1.0"


# 16. the divergence detector: a slow climb to a new level is not a blow-up; a jump is
def _feed(values):
    mon = HealthMonitor(2e-4, 2e-4, 0.0, 100_000, total_steps=100 * len(values))
    found = []
    for i, v in enumerate(values):
        found += mon.observe({"step": 100 * (i + 1), "images": 6400 * (i + 1), "grad_norm_g": v, "loss_d": 1.2, "loss_g": 0.8,
                              "d_acc": 0.6})
    return [f.name for f in found]


def test_divergence_tells_a_slow_climb_from_a_blow_up():
    climb = [0.5] * 6 + [0.5 * 1.25 ** k for k in range(1, 20)] + [16.0] * 10  # 32x over 19 intervals, then steady
    assert _feed(climb) == []
    jump = [0.5] * 10 + [40.0, 60.0, 80.0]
    assert _feed(jump) == ["divergence"]
    assert math.isclose(0.5 * 1.25 ** 19, 34.7, rel_tol=0.01)


def test_every_recorded_preset_run_is_in_the_replays():
    from .conftest import ROOT

    recorded = {p.parent.name for p in (ROOT / "tests" / "data" / "healthy_runs").glob("*/metrics.jsonl")}
    # every shipped preset but folder64 and folder64_vae (20,000 steps at 64x64 on a folder: hours on this CPU)
    assert {"grid25", "ring8", "digits", "mnist_conditional", "mnist_vae", "mnist_dcgan", "mnist_resnet_hinge", "mnist_wgangp",
            "stacked_mnist"} <= recorded
    for name in recorded:
        cfg = load_yaml(ROOT / "tests" / "data" / "healthy_runs" / name / "config.yaml")
        preset = load_yaml(ROOT / "configs" / f"{name}.yaml")
        assert cfg["train"]["steps"] == preset["train"]["steps"], name  # a full run of the shipped schedule
    assert json.loads((ROOT / "tests" / "data" / "healthy_runs" / "grid25" / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 24000
