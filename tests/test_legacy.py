"""A run folder and an export written by main at f7877de (before the packages by layer) still load,
sample what they sampled then, and the run continues training."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import gankit

LEGACY = Path(__file__).parent / "data" / "legacy_f7877de"


def test_old_run_folder_and_export_sample_what_they_sampled_then():
    expected = np.load(LEGACY / "sample_seed3_label2.npy")
    for target in ("run", "export"):
        g = gankit.load(LEGACY / target)
        got = g.sample(6, seed=3, label=2)
        assert got.shape == (6, 16, 16, 1) and got.dtype == np.uint8
        assert np.array_equal(got, expected), target
        assert g.class_names[2] == "2"


def test_old_run_folder_resumes_and_samples_by_command(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(LEGACY / "run", run)
    cmd = [sys.executable, "-m", "gankit"]
    r = subprocess.run(cmd + ["train", "--out", str(run), "--resume", "auto", "train.steps=6"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resum" in (r.stdout + r.stderr).lower()
    assert (run / "checkpoints" / "ckpt_00000006.pt").exists()
    r = subprocess.run(cmd + ["sample", str(LEGACY / "export"), "--n", "4", "--out", str(tmp_path / "g.png")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.png").stat().st_size > 0
