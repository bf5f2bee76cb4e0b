import numpy as np
import pytest
import scipy.linalg
import torch

from gankit.errors import GankitError
from gankit.metrics import core


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's sqrtm, written independently of gankit."""
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_of_a_set_with_itself_is_zero():
    f = np.random.default_rng(0).standard_normal((500, 64))
    assert abs(core.fid(f, f)) < 1e-6


def test_fid_matches_the_reference_formula():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((400, 32))
    b = rng.standard_normal((300, 32)) @ rng.standard_normal((32, 32)) * 0.3 + 0.5
    ours, ref = core.fid(a, b), reference_fid(a, b)
    assert ref > 1 and abs(ours - ref) / ref < 1e-6


def test_fid_is_finite_and_real_with_few_or_identical_samples():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((1000, 256))
    few = rng.standard_normal((10, 256))
    same = np.repeat(rng.standard_normal((1, 256)), 50, axis=0)  # a fully collapsed generator
    for fake in (few, same):
        v = core.fid(real, fake)
        assert isinstance(v, float) and np.isfinite(v) and v > 0


def test_kid_is_unbiased():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((1000, 16)), rng.standard_normal((1000, 16))
    mean, std = core.kid(a, b, subsets=50, subset_size=200)
    assert abs(mean) < 3 * std / np.sqrt(50) + 1e-3
    far, _ = core.kid(a, b + 1.0, subsets=10, subset_size=200)
    assert far > 20 * abs(mean)


def test_precision_recall_density_coverage_extremes():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((300, 8))
    assert core.precision_recall(a, a) == (1.0, 1.0)
    d, c = core.density_coverage(a, a)
    assert c == 1.0 and d == pytest.approx(6 / 5)  # (k+1)/k: every point also lies in its own ball
    far = a + 100.0
    assert core.precision_recall(a, far) == (0.0, 0.0)
    assert core.density_coverage(a, far) == (0.0, 0.0)
    b = rng.standard_normal((300, 8))
    d, c = core.density_coverage(a, b)
    assert 0.7 < d < 1.3 and 0.85 < c <= 1.0


def test_mode_counting_on_constructed_points():
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    pts = np.concatenate([
        np.repeat(centres[:3], 10, axis=0) + 0.02,  # 30 high-quality samples on 3 modes (within 3 * 0.01 = 0.03)
        np.array([[0.5, 0.5]] * 10),  # 10 far from every centre
    ])
    r = core.mode_stats(pts, centres, std=0.01)
    assert r["modes"] == 3 and r["high_quality"] == pytest.approx(0.75)
    assert r["reverse_kl"] == pytest.approx(np.log(4 / 3))


def test_stacked_modes_and_class_coverage():
    digits = np.array([[1, 2, 3]] * 5 + [[0, 0, 0]] * 5)
    r = core.stacked_modes(digits)
    assert r["modes"] == 2 and r["kl"] == pytest.approx(np.log(500))
    # channel marginals: channel 0 half 1s half 0s (KL log 5), channels 1, 2 likewise
    assert r["channel_kl"] == pytest.approx([np.log(5)] * 3)
    r = core.stacked_modes(np.array([[a, b, c] for a in range(10) for b in range(10) for c in range(10)]))
    assert r["modes"] == 1000 and r["kl"] == pytest.approx(0, abs=1e-12) and r["channel_kl"] == pytest.approx([0, 0, 0], abs=1e-12)
    cc = core.class_coverage(np.array([0, 0, 1, 1]), np.array([0, 1, 2, 3]), 4)
    assert cc["classes_covered"] == 2 and cc["class_kl"] == pytest.approx(np.log(2))


def test_inception_score_bounds():
    k = 10
    confident_uniform = np.eye(k)[np.arange(1000) % k]
    assert core.inception_score(confident_uniform, splits=1)[0] == pytest.approx(k, rel=1e-6)
    assert core.inception_score(np.full((100, k), 1 / k), splits=1)[0] == pytest.approx(1.0)


def _inception_or_skip():
    from gankit.metrics.features import find_inception

    try:
        return find_inception()
    except GankitError as e:
        pytest.skip(str(e))


def test_inception_features_are_repeatable_and_hash_checked(tmp_path, monkeypatch):
    _inception_or_skip()
    from gankit.metrics.features import FEATURE_NETS

    net = FEATURE_NETS.get("inception")(None)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    f1, f2 = net.run(x), net.run(x)
    assert f1.shape == (3, 2048) and np.array_equal(f1, f2) and np.isfinite(f1).all()
    fake = tmp_path / "fake.pt"
    fake.write_bytes(b"not the real network")
    monkeypatch.setenv("GANKIT_INCEPTION", str(fake))
    with pytest.raises(GankitError, match="sha256"):
        FEATURE_NETS.get("inception")(None)


def test_eval_command_on_a_tiny_run(tmp_path, shared_cache):
    import json

    from gankit.cli import main
    from gankit.config import make_config
    from gankit.training.loop import train

    from .conftest import tiny_overrides

    train(make_config({}, tiny_overrides(**{"model.conditional": "true"})), tmp_path, quiet=True)
    assert main(["eval", str(tmp_path), "--features", "classifier", "--metrics", "fid,kid,pr,dc,is,classes", "--n", "200"]) == 0
    res = json.loads((tmp_path / "eval.json").read_text())["evaluations"][-1]
    for key in ("fid", "kid", "precision", "recall", "density", "coverage", "is_classifier", "classes_covered", "label_accuracy"):
        assert key in res and np.isfinite(res[key])
    prov = res["provenance"]
    assert prov["n_fake"] == 200 and prov["real"] == "digits" and prov["features"]["name"] == "classifier"
    assert len(prov["features"]["weights_sha256"]) == 64 and prov["step"] == 6


def test_real_against_real_beats_noise(shared_cache):
    """Classifier FID ranks a held-out real half far better than noise images."""
    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.analysis.evaluate import evaluate_samples

    ds = load_dataset(DataConfig(source="digits", resolution=16))
    half = ds.to_float(torch.arange(0, len(ds), 2))
    noise = torch.rand_like(half) * 2 - 1
    good = evaluate_samples(half, ds, ["fid"], "classifier", seed=0)["fid"]
    bad = evaluate_samples(noise, ds, ["fid"], "classifier", seed=0)["fid"]
    assert good * 10 < bad


def test_generated_images_are_measured_as_saved_clamped_and_8_bit(shared_cache):
    """A linear-output G (StyleGAN2, R3GAN) overshoots [-1, 1]: metrics see what a saved PNG holds."""
    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.analysis.evaluate import evaluate_samples
    from gankit.metrics.features import as_saved

    ds = load_dataset(DataConfig(source="digits", resolution=16))
    real = ds.to_float(torch.arange(0, len(ds), 2))
    over = real * 1.7 + torch.randn_like(real) * 0.01  # saturates the strokes and the background, off the 8-bit grid
    saved = (((over.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1)
    assert torch.equal(as_saved(over), saved) and float(over.abs().max()) > 1.5
    metrics = ["fid", "pr", "classes"]
    a, b = (evaluate_samples(x, ds, metrics, "classifier", seed=0) for x in (over, saved))
    assert a["fid"] == pytest.approx(b["fid"], abs=1e-9) and a["recall"] == b["recall"]
    from gankit.metrics.classifier import classify, get_classifier

    model = get_classifier(ds)[0]  # ...where the raw values would give the classifier other features
    assert (classify(model, over)[0] - classify(model, saved)[0]).abs().max() > 1e-2


def test_stacked_mnist_modes_on_real_stacks(monkeypatch):
    """The stacked MNIST metric end to end on real stacks: many modes, flat channel marginals,
    confidently read channels, and the provenance names the network it used."""
    import functools

    from gankit.config import DataConfig
    from gankit.data import load_dataset
    from gankit.metrics import classifier
    from gankit.analysis.evaluate import evaluate_samples

    monkeypatch.setattr(classifier, "train_classifier", functools.partial(classifier.train_classifier, epochs=2))  # time
    ds = load_dataset(DataConfig(source="stacked_mnist"))
    res = evaluate_samples(ds.to_float(torch.arange(2000)), ds, ["modes"], None, seed=0)
    assert res["digit_classifier_val_acc"] > 0.9
    assert res["stacked_modes"] > 800  # 2,000 uniform draws of 1,000 modes: about 865 expected
    assert all(k < 0.03 for k in res["stacked_channel_kl"]) and res["stacked_confident"] > 0.7  # 97% with the 8-epoch classifier
    assert "digit classifier" in res["provenance"]["features"]


def test_the_onnxruntime_inception_gives_todays_features_and_fid(monkeypatch):
    """The faster engine runs the same network: features within float noise of TorchScript's, and the
    FID of a fixed batch equal to 3 significant figures."""
    _inception_or_skip()
    pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_digits

    from gankit.metrics.features import FEATURE_NETS

    digits = torch.tensor(load_digits().images[:64], dtype=torch.float32)[:, None] / 8 - 1
    real, fake = digits[:32], torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = {}
    for engine in ("torch", "onnxruntime"):
        monkeypatch.setenv("GANKIT_INCEPTION_ENGINE", engine)
        net = FEATURE_NETS.get("inception")(None)
        out[engine] = (net.run(real), net.run(fake))
    (rt, ft), (ro, fo) = out["torch"], out["onnxruntime"]
    assert np.abs(rt - ro).max() < 1e-4 * np.abs(rt).max() and np.abs(ft - fo).max() < 1e-4 * np.abs(ft).max()
    a, b = core.fid(rt, ft), core.fid(ro, fo)
    assert a > 1 and f"{a:.3g}" == f"{b:.3g}", (a, b)
    monkeypatch.setenv("GANKIT_INCEPTION_ENGINE", "tensorflow")
    with pytest.raises(GankitError, match="GANKIT_INCEPTION_ENGINE: auto, torch or onnxruntime"):
        FEATURE_NETS.get("inception")(None)
