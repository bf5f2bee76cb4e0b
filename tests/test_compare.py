import json

import pytest

from gankit.api.compare import compare_runs
from gankit.config import make_config
from gankit.errors import GankitError
from gankit.training.loop import train

from .conftest import tiny_overrides
from .test_train import _cli


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    train(make_config({}, tiny_overrides()), root / "gan", quiet=True)
    train(make_config({}, tiny_overrides(**{"model.family": "vae"})), root / "vae", quiet=True)
    return root


def test_compare_writes_one_row_per_run(two_runs, tmp_path, shared_cache):
    rows = compare_runs([two_runs / "gan", two_runs / "vae"], tmp_path, n=60)
    assert [r["run"] for r in rows] == ["gan", "vae"] and [r["family"] for r in rows] == ["gan", "vae"]
    md = (tmp_path / "compare.md").read_text().splitlines()
    assert md[0].startswith("| run | family") and len([x for x in md if x.startswith("| gan ") or x.startswith("| vae ")]) == 2
    saved = json.loads((tmp_path / "compare.json").read_text())
    for r in saved:  # every run measured the same way, on the same real subset
        assert r["metrics"]["fid"] >= 0 and 0 <= r["metrics"]["precision"] <= 1
        assert r["metrics"]["provenance"]["n_fake"] == 60
    assert len({json.dumps(r["metrics"]["provenance"]["real_split"]) for r in saved}) == 1
    from PIL import Image

    assert Image.open(tmp_path / "compare.png").width > 100
    from .test_report import Parsed

    page = (tmp_path / "compare.html").read_text()
    doc = Parsed(page)  # the comparison report: the table, the figure and each run's grid, inline
    assert doc.count("img") == 3 and "<td>gan</td>" in page and "<td>vae</td>" in page


def test_compare_accepts_an_export_folder(two_runs, tmp_path, shared_cache):
    from gankit.artefact.export import export

    exp = export(two_runs / "gan", "safetensors", tmp_path / "exp")
    rows = compare_runs([two_runs / "gan", exp], tmp_path / "out", n=60)
    assert [r["run"] for r in rows] == ["gan", "exp"] and rows[1]["steps"] == rows[0]["steps"]
    assert rows[1]["metrics"]["fid"] == pytest.approx(rows[0]["metrics"]["fid"], abs=1e-9)  # the same generator, the same numbers
    assert rows[1]["params_total"] == rows[0]["params_total"]


def test_compare_reuses_a_runs_stored_evaluation_of_the_same_checkpoint_and_settings(two_runs, tmp_path, shared_cache, monkeypatch):
    import gankit.api.compare as comparison

    first = compare_runs([two_runs / "gan"], tmp_path / "a", n=60, n_real=200)
    assert first[0]["metrics"]["provenance"]["n_real"] == 200 and first[0]["settings"]["n_real"] == 200
    stored = [f for f in (two_runs / "gan" / "evaluations").glob("compare-*.json") if json.loads(f.read_text())["settings"]["n_real"] == 200]
    assert len(stored) == 1 and json.loads(stored[0].read_text())["step"] == first[0]["steps"]
    calls = []
    real = comparison.evaluate_samples
    monkeypatch.setattr(comparison, "evaluate_samples", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = compare_runs([two_runs / "gan", two_runs / "vae"], tmp_path / "b", n=60, n_real=200)  # another --out
    assert len(calls) == 1 and again[0]["metrics"] == json.loads(json.dumps(first[0]["metrics"]))  # gan read back, vae measured
    compare_runs([two_runs / "gan"], tmp_path / "c", n=60, n_real=100)  # other settings: measured again
    assert len(calls) == 2
    stored[0].write_text("{not json")  # a damaged record is measured again, not trusted
    compare_runs([two_runs / "gan"], tmp_path / "d", n=60, n_real=200)
    assert len(calls) == 3


def test_a_reused_evaluation_generates_only_the_grid_and_only_asked_metrics_are_shown(two_runs, tmp_path, shared_cache, monkeypatch):
    import numpy as np

    import gankit.api.compare as comparison

    first = compare_runs([two_runs / "gan"], tmp_path / "a", n=150, n_real=100, metrics=["fid", "kid"])
    sizes = []
    real = comparison.generate_for_eval
    monkeypatch.setattr(comparison, "generate_for_eval", lambda lg, n, seed: sizes.append(n) or real(lg, n, seed))
    again = compare_runs([two_runs / "gan"], tmp_path / "b", n=150, n_real=100, metrics=["fid", "kid"])
    assert sizes == [comparison.GRID]  # not the 150 the metrics were measured on
    a, b = (np.asarray(r[0]["grid"].convert("L"), dtype=int) for r in (first, again))
    assert a.shape == b.shape and np.abs(a - b).max() <= 1  # the first 64 of the 150, up to rounding
    head = (tmp_path / "b" / "compare.md").read_text().splitlines()[0]
    assert head.startswith("| run | family | loss | FID | KID | train min")  # no empty precision/recall/... columns
    assert "<th>KID</th>" in (tmp_path / "b" / "compare.html").read_text() and "recall" not in (tmp_path / "b" / "compare.html").read_text()


def test_compare_refuses_runs_on_other_data_unless_one_real_set_is_named(two_runs, tmp_path, shared_cache):
    other = tmp_path / "other"
    train(make_config({}, tiny_overrides(**{"data.limit": 500})), other, quiet=True)
    # the line says how the data differs (the names alone read alike)
    with pytest.raises(GankitError, match=r"trained on other data than .* \(digits, 500 images 1x16x16, 10 classes against "
                                          r"digits, 1797 images 1x16x16, 10 classes\)"):
        compare_runs([two_runs / "gan", other], tmp_path / "c", n=30)
    rows = compare_runs([two_runs / "gan", other], tmp_path / "c", n=30, real="digits")
    assert len(rows) == 2


def test_compare_trains_configs_for_a_budget(tmp_path, shared_cache):
    r = _cli("compare", "--configs", "configs/mnist_vae.yaml", "configs/mnist_dcgan.yaml", "--budget-minutes", "0.05",
             "--set", *tiny_overrides(**{"train.steps": 100000}), "--n", "30", "--out", str(tmp_path), cwd=str(_root()))
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "compare.json").read_text())
    assert [x["run"] for x in rows] == ["mnist_vae", "mnist_dcgan"]
    for x in rows:  # stopped by the budget, not by train.steps
        assert 0 < x["steps"] < 100000 and 0.05 <= x["wall_minutes"] < 0.5


def _root():
    from .conftest import ROOT

    return ROOT
