"""The Python API: documented, light to import, the same one-line errors; every example runs."""
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import gankit

from .conftest import ROOT, tiny_overrides

EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("[!_]*.py"))


def test_every_public_name_and_method_has_a_docstring():
    assert {"train", "load", "evaluate", "compare", "register_arch", "register_loss", "register_source"} <= set(gankit.__all__)
    missing = [n for n in gankit.__all__ if n != "__version__" and not (getattr(gankit, n).__doc__ or "").strip()]
    for cls in (gankit.Generator, gankit.Run):
        missing += [f"{cls.__name__}.{n}" for n, f in inspect.getmembers(cls) if not n.startswith("_") and callable(f)
                    and not (f.__doc__ or "").strip()]
    assert not missing, missing
    for n in ("train", "load", "evaluate", "compare"):  # typed
        sig = inspect.signature(getattr(gankit, n))
        assert sig.return_annotation is not inspect.Signature.empty and all(
            p.annotation is not inspect.Parameter.empty for p in sig.parameters.values() if p.kind != p.VAR_KEYWORD), n


def test_import_is_light_and_has_no_side_effects(tmp_path):
    code = ("import sys, os, gankit; heavy = [m for m in ('torch', 'numpy', 'PIL', 'tqdm') if m in sys.modules]; "
            "print(heavy, sorted(os.listdir('.')))")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[] []", r.stdout + r.stderr  # nothing imported, nothing written


def test_train_load_evaluate_and_errors(tmp_path):
    with pytest.raises(gankit.ConfigError, match="train.bogus: unknown key"):
        gankit.train({}, out=tmp_path / "x", train={"bogus": 1})
    with pytest.raises(gankit.ConfigError, match="train.steps"):
        gankit.train({}, out=tmp_path / "x", overrides={"train.steps": 0})
    over = [o for o in tiny_overrides(**{"data.source": "ring8", "model.arch": "mlp", "model.width": 16, "model.z_dim": 4}) if "resolution" not in o]
    run = gankit.train({}, out=tmp_path / "ring", overrides=over, quiet=True)
    assert run.step == 6 and run.config.model.arch == "mlp" and [r["step"] for r in run.metrics() if "loss_d" in r] == [2, 4, 6]
    res = gankit.evaluate(run.folder, metrics=["modes"], n=200)
    assert 0 <= res["modes"] <= 8 and res["provenance"]["step"] == 6
    exp = run.export(tmp_path / "exp")
    assert np.array_equal(gankit.load(exp).sample(10, seed=3), run.generator().sample(10, seed=3))
    with pytest.raises(gankit.GankitError, match="metrics: unknown"):
        gankit.evaluate(run.folder, metrics=["bogus"])
    with pytest.raises(gankit.CheckpointError, match="no such run folder"):
        gankit.load(tmp_path / "nothing")


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name, tmp_path):
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    r = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py")], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600, env={**os.environ, "GANKIT_EXAMPLES_TINY": "1"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    made = [p for p in (tmp_path / "runs").rglob("*") if p.suffix in (".png", ".gif", ".html")]
    assert made, "the example wrote no picture or page"


def test_resume_auto_continues_the_runs_own_config(tmp_path):
    """gankit.train(out=RUN, resume="auto") with no config takes the run's own config from its newest
    checkpoint, as `gankit train --resume auto --out RUN` does (it built the default config before)."""
    import gankit
    from .conftest import tiny_overrides

    over = dict(o.split("=", 1) for o in tiny_overrides(**{"train.steps": 3, "model.width": 6}))
    first = gankit.train({}, out=tmp_path / "r", overrides=over, quiet=True)
    assert first.step == 3
    more = gankit.train(out=tmp_path / "r", resume="auto", train={"steps": 6}, quiet=True)
    assert more.step == 6 and more.config.model.width == 6 and more.config.data.source == "digits"
    with pytest.raises(gankit.GankitError, match="no checkpoint to resume"):
        gankit.train(out=tmp_path / "empty", resume="auto", quiet=True)
