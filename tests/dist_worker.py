"""A training process of a multi-process test run, started by torch.multiprocessing (spawn)."""
import os
from pathlib import Path

import torch


def train_rank(rank: int, world: int, port: int, cfg_dict: dict, out: str, result_dir: str, resume: str | None) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), GANKIT_DIST_TIMEOUT="60")
    import hashlib

    import gankit.training.loop as loop
    from gankit.config import make_config

    digests = []  # after every step: a hash of G's and D's weights and buffers (spectral-norm and batch-norm ones too)
    update = loop.ema_update

    def spy(G_ema, G, beta):
        update(G_ema, G, beta)
        h = hashlib.sha256()
        for m in (G, p_ref["D"]):
            for v in m.state_dict().values():
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
        digests.append(h.hexdigest())

    p_ref = {}
    real_build = loop.build_state

    def build(*a, **k):
        parts = real_build(*a, **k)
        p_ref["D"] = parts.D
        return parts

    loop.ema_update, loop.build_state = spy, build
    torch.set_num_threads(1)
    p = loop.train(make_config(cfg_dict), Path(out), resume=resume, quiet=True)
    state = {k: {n: v.clone() for n, v in m.state_dict().items()} for k, m in (("G", p.G), ("D", p.D), ("G_ema", p.G_ema))}
    torch.save(state | {"step": p.step, "augment_p": p.augment.p, "digests": digests}, Path(result_dir) / f"rank{rank}.pt")
