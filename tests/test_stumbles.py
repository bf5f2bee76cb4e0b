"""Where users stumbled (issue: a second newcomer pass): class names wherever a label is taken, why a
run stopped, resume refusals, one-line server errors, small reprs and messages."""
import numpy as np
import pytest
from PIL import Image

from gankit.cli import main
from gankit.config import make_config
from gankit.errors import GankitError
from gankit.loop import train
from gankit.sampling import resolve_label

from .conftest import tiny_overrides


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def named_run(tmp_path_factory):
    """A conditional run on a folder with two named classes."""
    root = tmp_path_factory.mktemp("named")
    rng = np.random.default_rng(0)
    for cls, level in (("cat", 60), ("horse", 200)):
        (root / "data" / cls).mkdir(parents=True)
        for i in range(8):
            Image.fromarray((rng.integers(0, 40, (16, 16, 3)) + level).astype(np.uint8)).save(root / "data" / cls / f"{i}.png")
    cfg = make_config({}, tiny_overrides(**{"data.source": str(root / "data"), "model.conditional": "true", "train.batch_size": 8}))
    train(cfg, root / "run", quiet=True)
    return root / "run"


def test_a_label_is_taken_by_name_or_index():
    names = ["cat", "horse"]
    assert resolve_label("horse", 2, names) == 1 and resolve_label("1", 2, names) == 1 and resolve_label(0, 2, names) == 0
    assert resolve_label(None, 2, names) is None
    assert resolve_label("3", 10, [str(i) for i in range(10)]) == 3
    with pytest.raises(GankitError, match="unknown class 'zebra'; the classes are cat, horse"):
        resolve_label("zebra", 2, names)
    with pytest.raises(GankitError, match=r"must be 0..1 \(the model has 2 classes\), got 5; or a class name \(cat, horse\)"):
        resolve_label(5, 2, names)
    with pytest.raises(GankitError, match="unconditional"):
        resolve_label("cat", 0, [])


def test_sample_takes_a_class_name_and_the_start_line_names_the_classes(named_run, tmp_path, capsys):
    import gankit
    assert main(["sample", str(named_run), "--label", "horse", "--n", "4", "--out", str(tmp_path / "h.npz")]) == 0
    y = np.load(tmp_path / "h.npz")["labels"]
    assert y.tolist() == [1, 1, 1, 1]
    assert main(["sample", str(named_run), "--label", "zebra", "--out", str(tmp_path / "z.png")]) == 2
    assert "--label: unknown class 'zebra'; the classes are cat, horse" in _err_line(capsys)
    g = gankit.load(named_run)
    assert np.array_equal(g.sample(2, label="horse"), g.sample(2, label=1))
    train(make_config({}, tiny_overrides(**{"data.source": str(named_run.parent / "data"), "model.conditional": "true",
                                            "train.batch_size": 8, "train.steps": 1})), tmp_path / "again")
    assert "2 classes (cat, horse)" in capsys.readouterr().err


def test_a_run_says_why_it_stopped_and_what_to_raise(tmp_path, capsys):
    over = tiny_overrides(**{"train.steps": 1000, "train.max_minutes": 0.0005})
    p = train(make_config({}, over), tmp_path / "r")
    err = capsys.readouterr().err
    assert p.step < 1000
    assert f"done: {p.step} steps" in err and "the time budget train.max_minutes=0.0005 is spent" in err
    assert "--resume auto train.max_minutes=0.001" in err
    train(make_config({}, over), tmp_path / "r", resume="auto")
    assert "already finished at step" in (e := capsys.readouterr().err) and "train.max_minutes=0.0005 is spent" in e
    train(make_config({}, tiny_overrides()), tmp_path / "s")
    assert "done: 6 steps" in (e := capsys.readouterr().err) and "reached train.steps=6" in e


def test_resume_auto_with_settings_but_no_config_or_checkpoint_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty"
    assert main(["train", "--resume", "auto", "--out", str(empty), "data.resolution=32", "train.steps=2"]) == 2
    line = _err_line(capsys)
    assert f"{empty}: no checkpoint to resume; to start a run there, give its config" in line
    assert not empty.exists()
