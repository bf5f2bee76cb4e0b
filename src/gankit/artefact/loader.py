"""The one loader of a trained generator: from an export folder, a run folder's newest valid checkpoint
or a checkpoint file, with what sample, eval, compare and the API need to know of its run."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import load_target
from ..config import Config, make_config
from ..device import pick_device
from ..errors import CheckpointError, GankitError
from ..models import Spec, build_models, make_spec


@dataclass
class LoadedGenerator:
    """G_ema and what sample, eval and compare need to know of its run."""

    G: nn.Module
    cfg: Config
    spec: Spec
    data: dict[str, Any]
    step: int
    path: Path
    images: int = 0  # images seen in training
    wall: float = 0.0  # training seconds
    params_d: int = 0  # trainable weights of D (or a VAE's encoder)
    state: dict[str, Any] | None = None  # the whole checkpoint (None for an export, which holds G alone)
    export_meta: dict[str, Any] | None = None  # an export's generator.json (None for a checkpoint)


def trainable_count(state_dict: dict[str, torch.Tensor]) -> int:
    """Weights in a state dict, not BN running statistics nor spectral-norm power-iteration vectors."""
    return sum(v.numel() for k, v in state_dict.items()
               if v.is_floating_point() and "running" not in k and not k.endswith(("weight_u", "weight_v")))


def check_generates(lg: LoadedGenerator, command: str) -> None:
    """`command` draws from latents: refuse a translation run (model.family=pix2pix) with one line."""
    if lg.spec.in_channels:
        raise GankitError(f"{lg.path}: a translation run (model.family={lg.cfg.model.family}) turns input images into output images; "
                          f"{command} draws from latents: use `gankit translate RUN IMAGE... --out DIR`")


def load_generator(target: str | Path, device: str = "cpu", flag: str = "--device") -> LoadedGenerator:
    """G_ema (eval mode) from an export folder, a run folder's newest valid checkpoint or a checkpoint file."""
    from .exported import is_export, read_export

    if is_export(target):
        G, meta = read_export(target, pick_device(device, flag))
        try:
            cfg = make_config(meta["config"])
        except (KeyError, TypeError, GankitError) as e:
            raise CheckpointError(f"{Path(target) / 'generator.json'}: its stored config is unusable ({e})") from None
        spec = Spec(**{**meta["spec"], "shape": tuple(meta["spec"]["shape"])})
        data = {**meta.get("data", {}), "class_names": meta.get("class_names", [])}
        t = meta.get("training", {})
        return LoadedGenerator(G, cfg, spec, data, int(meta.get("step", 0)), Path(target), int(t.get("images", 0)),
                               float(t.get("wall_seconds", 0.0)), int(t.get("params_d", 0)), export_meta=meta)
    path, state = load_target(target)
    try:
        cfg = make_config(state["config"])
        meta = state["data"]
        spec = make_spec(cfg.model, tuple(meta["shape"]), meta["num_classes"], meta["kind"], cfg.loss.gp, in_channels=int(meta.get("in_channels", 0)))
    except (KeyError, TypeError, GankitError) as e:
        raise CheckpointError(f"{path}: its stored config or data description is unusable ({e})") from None
    torch.manual_seed(0)
    G, _ = build_models(spec, cfg.model.arch, cycle=cfg.model.family == "cyclegan")
    try:
        G.load_state_dict(state["G_ema"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: G_ema does not fit the stored architecture ({str(e).splitlines()[0][:200]})") from None
    G = G.to(pick_device(device, flag)).eval().requires_grad_(False)
    return LoadedGenerator(G, cfg, spec, meta, int(state["step"]), path, int(state.get("images", 0)),
                           float(state.get("wall", 0.0)), trainable_count(state["D"]), state)
