"""A training run's state: networks, optimisers, random streams and data order (`RunState`), and what a
checkpoint holds of it. G_ema back from a checkpoint for sample, eval and compare is
`artefact.loader`.
"""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..artefact.sampling import recalibrate_bn
from ..config import Config
from ..data import Dataset
from ..device import pick_device
from ..errors import CheckpointError
from ..models import Spec, build_models, make_spec
from ..version import __version__
from . import schedule
from .augment import Augmenter
from .batches import DataOrder
from .dist import World, cross_rank_batch_norm, cross_rank_means


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (0 where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(r / (1 << 20) if sys.platform == "darwin" else r / 1024, 1)  # bytes on macOS, KiB on Linux


def ema_update(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """G_ema <- beta * G_ema + (1 - beta) * G for weights; buffers are copied."""
    with torch.no_grad():
        pe, pg = list(G_ema.parameters()), list(G.parameters())
        if beta == 0.0:
            torch._foreach_copy_(pe, pg)
        else:
            torch._foreach_lerp_(pe, pg, 1.0 - beta)
        for be, bg in zip(G_ema.buffers(), G.buffers()):
            be.copy_(bg)


def data_meta(ds: Dataset) -> dict[str, Any]:
    return {
        "name": ds.name, "kind": ds.kind, "shape": list(ds.shape), "num_classes": ds.num_classes, "in_channels": ds.in_channels,
        "size": len(ds), "fingerprint": ds.fingerprint(), "skipped": ds.skipped, "skipped_files": list(ds.skipped_files),
        "class_names": list(ds.class_names),
    }


def describe_data(meta: dict[str, Any]) -> str:
    """A run's data in a few words, from `data_meta`: 'mnist5k, 5000 images 3x32x32, 10 classes'."""
    shape = "x".join(map(str, meta.get("shape", ())))
    classes = f", {meta['num_classes']} classes" if meta.get("num_classes") else ""
    return f"{meta.get('name')}, {meta.get('size')} {'images' if meta.get('kind') != 'points' else 'points'} {shape}{classes}"


def data_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """How two runs' data differ, for an error line: both descriptions, or, where those read alike,
    that the contents differ (another subset, changed files)."""
    da, db = describe_data(a), describe_data(b)
    return f"{da} against {db}" if da != db else f"{da} both, but other images (another subset, or the files changed)"


@dataclass
class RunState:
    """Everything a training run holds between steps."""

    cfg: Config
    spec: Spec
    device: torch.device
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    order: DataOrder
    latent_gen: torch.Generator
    augment: Augmenter
    step: int = 0
    images: int = 0
    wall: float = 0.0  # training seconds before this process started
    counters: dict[str, int] = field(default_factory=lambda: {"nonfinite": 0, "rollbacks": 0})
    extra: dict[str, Any] = field(default_factory=dict)  # adaptive values of other components
    bn_step: int = -1  # the step G_ema's batch-norm statistics were last recomputed for
    world: World = field(default_factory=World)  # this process's place in a multi-process run
    now: Any = None  # this step's scheduled values (schedule.Now), set by schedule.apply
    # a VAE run (model.family=vae) keeps its decoder in G / G_ema and its encoder in D


def build_state(cfg: Config, ds: Dataset, world: World | None = None) -> RunState:
    """Networks, optimisers and random streams; on several processes every rank builds the same
    ones (same seeds) with batch norm over the global batch."""
    world = world or World()
    device = pick_device(cfg.train.device)
    if world.multi and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    spec = make_spec(cfg.model, ds.shape, ds.num_classes, ds.kind, cfg.loss.gp, in_channels=ds.in_channels)
    torch.manual_seed(cfg.train.seed)
    G, D = build_models(spec, cfg.model.arch, vae=cfg.model.family == "vae", cycle=cfg.model.family == "cyclegan")
    G, D = G.to(device), D.to(device)
    if cfg.train.channels_last and ds.kind != "points":
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    # G_ema keeps batch norm of its own: its statistics are recomputed from fixed latents (the same on
    # every rank), also by rank 0 alone for a grid, so they must not wait for the other ranks
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    if world.multi:
        G, D = cross_rank_means(cross_rank_batch_norm(G)), cross_rank_batch_norm(D)
    # fused Adam: one kernel for all parameters (a few % faster on the CPU too), and it can
    # skip a non-finite update on the device itself (FiniteGuard's deferred mode)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.train.lr_g, betas=cfg.train.betas_g, fused=True)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.train.lr_d, betas=cfg.train.betas_d, fused=True)
    return RunState(
        cfg, spec, device, G, D, G_ema, opt_g, opt_d,
        DataOrder(len(ds) * (2 if cfg.data.mirror else 1), cfg.train.seed), torch.Generator().manual_seed(cfg.train.seed + 1),
        Augmenter(cfg.augment, cfg.train.batch_size, cfg.train.seed, world.rank, world.size), world=world,
        now=schedule.values(cfg, 0, 0),
    )


def state_of(p: RunState, meta: dict[str, Any]) -> dict[str, Any]:
    """The full training state as tensors and plain values (safe for weights_only loading)."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "latent": p.latent_gen.get_state()}
    if torch.cuda.is_available() and p.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(p.device)
    return {
        "format": 1, "version": __version__, "config": p.cfg.to_dict(), "data": meta,
        "step": p.step, "images": p.images, "wall": p.wall, "counters": dict(p.counters),
        "G": p.G.state_dict(), "D": p.D.state_dict(), "G_ema": p.G_ema.state_dict(),
        "opt_g": p.opt_g.state_dict(), "opt_d": p.opt_d.state_dict(),
        "rng": rng, "order": p.order.state_dict(), "augment": p.augment.state_dict(p.world.sum), "extra": dict(p.extra),
    }


def recalibrated_ema(p: RunState) -> nn.Module:
    """G_ema with batch-norm statistics for the current step, recomputed once per step: the grid,
    the evaluation and the checkpoint of one step share them (each recomputation is dozens of
    G forward passes)."""
    if p.bn_step != p.step:
        recalibrate_bn(p.G_ema, p.spec.z_dim, p.spec.num_classes, p.device)
        p.bn_step = p.step
    return p.G_ema


def restore(p: RunState, state: dict[str, Any], path: Path) -> None:
    p.bn_step = -1
    try:
        p.G.load_state_dict(state["G"])
        p.D.load_state_dict(state["D"])
        p.G_ema.load_state_dict(state["G_ema"])
        p.opt_g.load_state_dict(state["opt_g"])
        p.opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["rng"]["torch"])
        p.latent_gen.set_state(state["rng"]["latent"])
        if "cuda" in state["rng"] and p.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], p.device)
        p.order.load_state_dict(state["order"])
        p.augment.load_state_dict(state["augment"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: does not match this run's networks ({str(e).splitlines()[0][:200]})") from None
    p.step, p.images, p.wall = int(state["step"]), int(state["images"]), float(state["wall"])
    p.counters = dict(state.get("counters", p.counters))
    p.extra = dict(state.get("extra", {}))
