"""Several processes on the CPU (gloo), tiny networks, one thread each: the same maths as one process."""
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from gankit.config import make_config
from gankit.train import train

from .conftest import tiny_overrides
from .dist_worker import train_rank

# float32 on both sides, sums in another order: measured 2e-6 to 2.3e-5 of the weights' change after 4 steps
TOL = 2e-4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_world(n: int, cfg, out: Path, results: Path, resume: str | None = None) -> list[dict]:
    results.mkdir(parents=True, exist_ok=True)
    mp.start_processes(train_rank, args=(n, free_port(), cfg.to_dict(), str(out), str(results), resume), nprocs=n,
                       start_method="spawn", join=True)
    return [torch.load(results / f"rank{r}.pt", weights_only=True) for r in range(n)]


def state_of(p) -> dict:
    return {k: {n: v.clone() for n, v in m.state_dict().items()} for k, m in (("G", p.G), ("D", p.D), ("G_ema", p.G_ema))}


def rel_diff(a: dict, b: dict, start: dict | None = None) -> float:
    """Largest relative difference over all weights (of their change since `start`, when given)."""
    worst = 0.0
    for part in ("G", "D", "G_ema"):
        for k, va in a[part].items():
            if not va.is_floating_point():
                continue
            vb = b[part][k]
            ref = va - start[part][k] if start is not None else va
            worst = max(worst, float((va - vb).norm() / ref.norm().clamp_min(1e-12)))
    return worst


CASES = {
    "bn_g_r1_ema": {"loss.r1": 1.0, "train.ema_halflife": 50},
    "gp_pac_diffaugment": {"loss.name": "wgan", "loss.gp": 10.0, "model.sn_d": False, "model.pac": 2,
                           "augment.policy": "color,translation,cutout"},
    "conditional_adaptive_augment": {"model.conditional": True, "augment.policy": "translation", "augment.adaptive": True,
                                     "augment.speed_kimg": 0.05},
}


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_match_one(tmp_path, case):
    over = {"train.steps": 4, "train.batch_size": 8, "train.log_every": 2, "train.sample_every": 10**6, "train.checkpoint_every": 2,
            "train.threads": 1, **CASES[case]}
    cfg = make_config({}, tiny_overrides(**over))
    torch.manual_seed(cfg.train.seed)
    from gankit.data import load_dataset
    from gankit.run import build_parts

    start = state_of(build_parts(cfg, load_dataset(cfg.data)))
    one = state_of(train(cfg, tmp_path / "one", quiet=True))
    two = run_world(2, cfg, tmp_path / "two", tmp_path / "res")
    assert rel_diff(two[0], two[1]) == 0.0  # every rank holds the same weights and buffers
    assert rel_diff(one, two[0], start) < TOL, rel_diff(one, two[0], start)
    assert rel_diff(one, start) > 0.01  # the networks did move
    for step in (2, 4):  # the checkpoints rank 0 wrote match one process's
        a = torch.load(tmp_path / "one" / "checkpoints" / f"ckpt_{step:08d}.pt", weights_only=True)
        b = torch.load(tmp_path / "two" / "checkpoints" / f"ckpt_{step:08d}.pt", weights_only=True)
        assert a["order"] == b["order"] and torch.equal(a["rng"]["latent"], b["rng"]["latent"])
        assert rel_diff(a, b, start) < TOL
