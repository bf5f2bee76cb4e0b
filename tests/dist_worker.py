"""A training process of a multi-process test run, started by torch.multiprocessing (spawn)."""
import os
from pathlib import Path

import torch


def train_rank(rank: int, world: int, port: int, cfg_dict: dict, out: str, result_dir: str, resume: str | None) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), GANKIT_DIST_TIMEOUT="60")
    from gankit.config import make_config
    from gankit.train import train

    torch.set_num_threads(1)
    p = train(make_config(cfg_dict), Path(out), resume=resume, quiet=True)
    state = {k: {n: v.clone() for n, v in m.state_dict().items()} for k, m in (("G", p.G), ("D", p.D), ("G_ema", p.G_ema))}
    torch.save(state | {"step": p.step, "augment_p": p.augment.p}, Path(result_dir) / f"rank{rank}.pt")
