import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
# onnxruntime-web as `make web` installed it (found before each test gets a cache of its own)
ORT_WEB = Path(os.environ.get("GANKIT_ORT_WEB") or Path(os.environ.get("GANKIT_CACHE", Path.home() / ".cache" / "gankit"))
               / "onnxruntime-web-1.30.0" / "node_modules" / "onnxruntime-web" / "dist")
ARTIFACTS = ROOT / "test-artifacts"  # screenshots of browser tests (ignored by git)


def need(what: str, ok: bool) -> None:
    """Skip when an optional tool is missing on a developer machine; in CI (CI=true) fail instead."""
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{what} is missing; .ci/run installs it")
        pytest.skip(f"{what} is missing (make install / make web / apt-get install chromium)")


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """Each test gets its own gankit cache and a fixed thread count."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    torch.set_num_threads(2)


def tiny_overrides(**extra) -> list[str]:
    """A seconds-long image run: digits at 16x16, narrow networks."""
    base = {
        "data.source": "digits", "data.resolution": 16, "model.arch": "dcgan", "model.width": 8, "model.z_dim": 8,
        "train.steps": 6, "train.batch_size": 16, "train.log_every": 2, "train.sample_every": 3,
        "train.checkpoint_every": 3, "train.ema_halflife": 100, "train.threads": 2,
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def shared_data(name: str) -> Path:
    p = SHARED / name
    if not p.exists():
        pytest.skip(f"{p} is missing (../shared/data is only on developer and CI machines)")
    return p


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def shared_cache(_session_cache, monkeypatch):
    """One gankit cache for the whole session, so a dataset's classifier is trained once."""
    monkeypatch.setenv("GANKIT_CACHE", str(_session_cache))
    return _session_cache
