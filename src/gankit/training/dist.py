"""Everything distributed, in one place: the world, each rank's share, reductions, agreement, barriers.

`torchrun` (or any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT)
makes a multi-process run; without that environment the world is one process and every call
here costs nothing. The loop keeps one process's maths on N processes:

- every rank draws the randomness of the whole global batch (latents, augmentation, penalty
  weights) from the same seeded streams and takes its slice (`share`), and the data order is one
  global permutation, so the random streams do not depend on the number of processes;
- gradients are averaged across ranks in buckets all-reduced while backward runs (`GradSync`),
  in a fixed order; no DDP wrapper, so double-backward penalties (R1, WGAN-GP) need nothing
  special and D's gradients are never computed during the G step;
- batch norm uses statistics of the global batch (`CrossRankBatchNorm`), so running statistics and
  outputs match one process (torch's SyncBatchNorm is GPU-only); so do other running means of batch
  statistics (`cross_rank_means`: StyleGAN2's w_avg);
- decisions (non-finite steps, stop signals, time budget, ADA's r_t, health) read reduced values,
  so every rank takes the same one; rank 0 alone writes files.
A dead peer makes the next collective fail (gloo) or time out (`GANKIT_DIST_TIMEOUT`, default 300 s):
the survivors stop with one line.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import GankitError

ENV = ("RANK", "WORLD_SIZE")


class PeerLost(GankitError):
    """A collective failed: another process of the run died or stopped answering."""


def peer_lost(e: BaseException) -> PeerLost:
    reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
    rank, size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    return PeerLost(f"rank {rank} of {size}: another process of this run stopped answering ({reason}); "
                    "the newest checkpoint is kept: start the run again with --resume auto")


def is_collective_failure(e: BaseException) -> bool:
    """A failed collective, also one raised inside autograd (the batch norm's backward all-reduce)."""
    return isinstance(e, dist.DistError) or (isinstance(e, RuntimeError) and any(
        k in str(e) for k in ("gloo", "Gloo", "NCCL", "Connection reset", "Connection closed", "timed out")))


def collective(fn, *args, **kw):
    """Run one collective; its failure (gloo: a connection reset; any backend: the timeout) is a PeerLost."""
    try:
        return fn(*args, **kw)
    except (RuntimeError, dist.DistError) as e:
        raise peer_lost(e) from None


@dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def multi(self) -> bool:
        return self.size > 1

    def share(self, n: int) -> slice:
        """The rows of a global batch of `n` that this rank takes (n divides evenly: checked at start)."""
        k = n // self.size
        return slice(self.rank * k, (self.rank + 1) * k)

    def _call(self, fn, *args, **kw):
        return collective(fn, *args, **kw)

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-key means over ranks (one collective)."""
        if not self.multi or not values:
            return values
        keys = sorted(values)
        flat = torch.stack([values[k].detach().float().reshape(()) for k in keys])
        self._call(dist.all_reduce, flat)
        return {k: v for k, v in zip(keys, flat / self.size)}

    def sum(self, values: list[float]) -> list[float]:
        if not self.multi:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        self._call(dist.all_reduce, t)
        return t.tolist()

    def gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """Every rank's rows of a global batch, in rank order (all ranks' `t` have one shape)."""
        if not self.multi:
            return t
        parts = [torch.empty_like(t) for _ in range(self.size)]
        self._call(dist.all_gather, parts, t.contiguous())
        return torch.cat(parts)

    def barrier(self) -> None:
        if self.multi:
            self._call(dist.barrier)

    def broadcast_object(self, obj):
        """Rank 0's `obj` on every rank."""
        if not self.multi:
            return obj
        box = [obj]
        self._call(dist.broadcast_object_list, box, src=0)
        return box[0]

    def broadcast_module(self, m: nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank."""
        if not self.multi:
            return
        for t in [*m.parameters(), *m.buffers()]:
            with torch.no_grad():
                self._call(dist.broadcast, t.data, src=0)

    def close(self) -> None:
        if self.multi and dist.is_initialized():
            dist.destroy_process_group()


def init_world(device: str) -> World:
    """The world torchrun's environment describes (one process without it), its process group
    started: nccl for GPUs, gloo for CPUs."""
    if not all(k in os.environ for k in ENV) or int(os.environ["WORLD_SIZE"]) <= 1:
        return World()
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    on_gpu = device in ("cuda", "auto") and torch.cuda.is_available()
    if on_gpu:
        torch.cuda.set_device(local)
    timeout = datetime.timedelta(seconds=float(os.environ.get("GANKIT_DIST_TIMEOUT", "300")))
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if on_gpu else "gloo", rank=rank, world_size=size, timeout=timeout)
        except (RuntimeError, ValueError) as e:
            raise GankitError(f"rank {rank} of {size}: cannot join the run's process group ({str(e).splitlines()[0][:160]})") from None
    return World(rank, size, local)


def check_divisible(world: World, batch: int, pac: int) -> None:
    """The global batch (and each rank's share of PacGAN packs) must split evenly."""
    if not world.multi:
        return
    if batch % world.size:
        raise GankitError(f"train.batch_size: the global batch {batch} does not split evenly over {world.size} processes")
    if (batch // world.size) % pac:
        raise GankitError(f"model.pac: each process's share of the batch ({batch // world.size}) is not a multiple of "
                          f"model.pac={pac}; choose train.batch_size as a multiple of {world.size * pac}")


class CrossRankBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the global batch: per-channel sums all-reduced (with gradients), so outputs
    and running statistics match one process at the global batch. Used only when world size > 1."""

    def _check_input_dim(self, x: torch.Tensor) -> None:  # 1d or 2d alike
        pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized():
            return super().forward(x)
        import warnings

        import torch.distributed.nn.functional as dnn  # all_reduce with a backward (the functional one has none on gloo)

        dims = [d for d in range(x.dim()) if d != 1]
        xf = x.float()
        n_local = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float32, device=x.device)
        stats = torch.cat([xf.sum(dims), (xf * xf).sum(dims), n_local])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            stats = collective(dnn.all_reduce, stats)
        c = x.shape[1]
        n = stats[-1]
        mean, sq = stats[:c] / n, stats[c:2 * c] / n
        var = (sq - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
                self.num_batches_tracked += 1
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


class LaggedAgreement:
    """Flags agreed over ranks one step late, without waiting: each call launches this step's
    reduction and returns the previous step's (all false at the first call). Every rank calls it
    once per step, so all of them act on the same step's agreement at the same later step. On one
    process it returns this step's flags at once."""

    def __init__(self, world: World):
        self.world = world
        self.pending: tuple[torch.Tensor, object] | None = None

    def __call__(self, *flags: bool) -> list[bool]:
        if not self.world.multi:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], dtype=torch.float64)
        prev, self.pending = self.pending, (t, collective(dist.all_reduce, t, async_op=True))
        if prev is None:
            return [False] * len(flags)
        collective(prev[1].wait)
        return [v > 0 for v in prev[0].tolist()]

    def close(self) -> None:
        """Wait for the last reduction (every rank launched it)."""
        if self.pending is not None:
            collective(self.pending[1].wait)
            self.pending = None


class GradSync:
    """Means over ranks of `params`' gradients that overlap the backward pass (as DDP's buckets do,
    without a wrapper): a hook on each parameter marks its gradient ready; a bucket of about
    `bucket_mb` whose gradients are all ready is all-reduced asynchronously (buckets in a fixed
    order, the same on every rank, each launched once those before it are), while backward goes on
    computing the rest; `finish` launches what is left (a gradient that never came counts as 0),
    waits, and writes the means back. Double-backward penalties (R1, R2, WGAN-GP) need nothing
    special: autograd accumulates each parameter's gradient once per backward, whatever paths it
    took. Outside an armed backward the hooks do nothing (D's parameters are frozen in G's step)."""

    def __init__(self, world: World, params: list[torch.Tensor], bucket_mb: float = 1.0):
        self.world = world
        self.params = [q for q in params if q.requires_grad]
        self.buckets: list[list[torch.Tensor]] = [[]]
        size = 0
        for q in reversed(self.params):  # backward makes the last layers' gradients first
            if size >= bucket_mb * 2**20:
                self.buckets.append([])
                size = 0
            self.buckets[-1].append(q)
            size += q.numel() * 4
        self.bucket_of = {id(q): i for i, b in enumerate(self.buckets) for q in b}
        self.armed = False
        for q in self.params:
            q.register_post_accumulate_grad_hook(self._ready)

    def arm(self) -> None:
        self.missing = [len(b) for b in self.buckets]
        self.flats: list[torch.Tensor] = []
        self.works: list = []
        self.armed = True

    def _ready(self, q: torch.Tensor) -> None:
        if not self.armed:
            return
        self.missing[self.bucket_of[id(q)]] -= 1
        while len(self.flats) < len(self.buckets) and self.missing[len(self.flats)] == 0:
            self._launch(len(self.flats))

    def _launch(self, i: int) -> None:
        flat = torch.cat([(q.grad if q.grad is not None else torch.zeros_like(q)).reshape(-1).float() for q in self.buckets[i]])
        self.flats.append(flat)
        self.works.append(collective(dist.all_reduce, flat, async_op=True))

    def finish(self, loss: torch.Tensor) -> torch.Tensor:
        """Wait for every bucket; gradients and `loss` become their means over ranks."""
        self.armed = False
        while len(self.flats) < len(self.buckets):
            self._launch(len(self.flats))
        loss = loss.detach().float().reshape(1).clone()
        collective(dist.all_reduce, loss)
        for work in self.works:
            collective(work.wait)
        for bucket, flat in zip(self.buckets, self.flats):
            flat /= self.world.size
            offset = 0
            for q in bucket:
                n = q.numel()
                q.grad = flat[offset:offset + n].view_as(q).to(q.dtype)
                offset += n
        return loss[0] / self.world.size


def global_batch_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean over rows of the global batch (no gradient): each rank's row sums and counts all-reduced."""
    if not dist.is_initialized():
        return x.mean(0)
    stats = torch.cat([x.sum(0).flatten(), torch.tensor([float(len(x))], dtype=x.dtype, device=x.device)])
    collective(dist.all_reduce, stats)
    return (stats[:-1] / stats[-1]).view(x.shape[1:])


def cross_rank_means(m: nn.Module) -> nn.Module:
    """Running means of batch statistics kept by modules of `m` (those with a `batch_mean`, such as
    StyleGAN2's w_avg) over the global batch, so they match one process."""
    for mod in m.modules():
        if hasattr(mod, "batch_mean"):
            mod.batch_mean = global_batch_mean
    return m


def cross_rank_batch_norm(m: nn.Module) -> nn.Module:
    """Make every BatchNorm1d/2d in `m` normalise over the global batch (state dict unchanged)."""
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)) and type(mod) in (nn.BatchNorm1d, nn.BatchNorm2d):
            mod.__class__ = CrossRankBatchNorm
    return m
