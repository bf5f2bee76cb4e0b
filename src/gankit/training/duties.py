"""The loop's periodic work in one place: the metrics line, health checks and what they do
(warn, stop, roll back), grids, evaluation during training, and checkpoints. Rank 0 alone writes
(through the run folder, `runfolder.RunFolder`); every rank takes the same decisions from the same
(broadcast) records. A rollback is returned to the loop (`Rollback`), which continues from it."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..analysis.health import DiversityProbe, HealthMonitor
from ..artefact.sampling import balanced_labels, generate
from ..checkpoint import checkpoint_path, latest_valid, save_checkpoint
from ..config import Config, dump_yaml, make_config
from ..console import say, warn
from ..data import Dataset
from ..errors import ConfigError, GankitError
from ..losses import LOSSES
from ..runfolder import RunFolder
from ..viz import save_grid, save_scatter
from .augment import Augmenter
from .dist import World
from .state import RunState, peak_rss_mb, recalibrated_ema, restore, state_of


@dataclass
class Rollback:
    """What a rollback restored: the run continues from `step` (in `p`) with `cfg`, the remedy applied."""

    checkpoint: Path
    step: int
    cfg: Config


class Duties:
    def __init__(self, p: RunState, ds: Dataset, run: RunFolder, meta: dict[str, Any], world: World):
        self.p, self.ds, self.run, self.meta, self.world = p, ds, run, meta, world
        cfg = p.cfg
        self.fixed_seed = cfg.train.seed + 100
        self.evaluator = None
        if cfg.eval.every:
            from .during import TrainingEvaluator

            self.evaluator = TrainingEvaluator(cfg, ds)
        self.probe = DiversityProbe(ds, p.spec.z_dim, p.spec.num_classes) if ds.kind != "pairs" else None
        self.monitor = HealthMonitor.for_run(cfg, len(ds))
        self.first_log = True
        # for people to look at: snapshots of a 2D game, TensorBoard, the report (rank 0 writes them)
        self.snapshots = None
        self.snapshot_every = cfg.train.snapshot_every or cfg.train.sample_every
        if ds.kind == "points" and cfg.model.family == "gan" and world.main:
            from .snapshots import Snapshots

            self.snapshots = Snapshots(ds, p.spec.z_dim, p.spec.num_classes, cfg.loss.name, LOSSES.get(cfg.loss.name), cfg.model.pac,
                                       self.fixed_seed)
        self.board = None
        if cfg.log.tensorboard and world.main:
            from ..analysis.tboard import Board

            self.board = Board(run.tensorboard)
        if world.main:
            self._describe_run()

    def _describe_run(self) -> None:
        """run.json (what the report shows of the data and networks) and samples/real.png."""
        p, ds = self.p, self.ds
        from ..version import __version__

        info = {"name": self.run.root.name, "data": self.meta, "family": p.cfg.model.family, "arch": p.cfg.model.arch,
                "params_g": sum(x.numel() for x in p.G.parameters()), "params_d": sum(x.numel() for x in p.D.parameters()),
                "steps": p.cfg.train.steps, "world_size": self.world.size, "device": str(p.device), "gankit": __version__}
        self.run.write_info(info)
        real = self.run.real_grid
        if ds.kind == "image" and not real.exists():  # (a translation's grids hold their targets)
            save_real_grid(ds, p.spec.num_classes, real)

    def metrics_line(self, acc: dict[str, torch.Tensor], n_good: float, images_per_s: float) -> dict[str, Any]:
        """Build, share and write one line of metrics.jsonl (statistics of the global batch)."""
        p = self.p
        rec = metrics_record(p, self.world.mean(acc), n_good, images_per_s)
        if self.probe is not None:
            rec.update(self.probe(p.G, p.device))
        if self.first_log:
            rec["dataset_size"], self.first_log = len(self.ds), False
        rec = self.world.broadcast_object(rec)  # rank 0's record: every rank's health decisions read the same
        if self.world.main:
            self.run.log(rec)
            if self.board is not None:
                self.board.scalars(rec)
        return rec

    def grid(self) -> None:
        if self.world.main:
            path = save_samples(self.p, self.ds, self.run.grid(self.p.step), self.fixed_seed)
            if self.p.cfg.model.family == "vae":
                save_reconstructions(self.p, self.ds, self.run.reconstructions(self.p.step))
            if self.board is not None:
                self.board.image("samples", path, self.p.step)

    def snapshot(self) -> None:
        """2D runs: one line of snapshots.jsonl for the live view (rank 0)."""
        if self.snapshots is not None:
            p = self.p
            self.run.log_snapshot(self.snapshots(p.G, p.D, p.device, p.step))

    def evaluate(self) -> Rollback | None:
        """Metrics during training (eval.every): logged, and judged by the health monitor."""
        p = self.p
        rec = self.world.broadcast_object(({"step": p.step, "images": p.images} | self.evaluator(p)) if self.world.main else None)
        if self.world.main:
            self.run.log(rec)
            if self.board is not None:
                self.board.scalars(rec)
        return self.check_health(rec)

    def report(self) -> None:
        """report.html (rank 0; log.report): a failure is a warning, never the end of training."""
        if self.world.main and self.p.cfg.log.report:
            from ..analysis.report import write_report

            try:
                write_report(self.run.root)
            except Exception as e:  # noqa: BLE001
                warn(f"report.html not written: {type(e).__name__}: {e}")

    def close(self) -> None:
        if self.board is not None:
            self.board.close()

    def save(self) -> Path:
        """A checkpoint: rank 0 writes, the others wait until the file is whole."""
        p = self.p
        recalibrated_ema(p)
        state = state_of(p, self.meta)  # on every rank: the augmenter's partial sums are reduced here
        keep = p.cfg.train.keep_checkpoints
        ckpts = self.run.checkpoints
        path = save_checkpoint(state, ckpts, p.step, keep) if self.world.main else checkpoint_path(ckpts, p.step)
        self.world.barrier()
        self.directions()
        self.report()
        return path

    def directions(self) -> None:
        """RUN/directions/ (the report's strips): semantic directions of G_ema at this checkpoint (rank 0, image
        generators with `latent_weight`); a failure is a warning, never the end of training."""
        p = self.p
        if not (self.world.main and p.cfg.log.report and self.meta.get("kind") == "image" and hasattr(p.G_ema, "latent_weight")):
            return
        from ..latent.files import write_run_directions

        try:
            write_run_directions(p.G_ema, self.run.directions)
        except Exception as e:  # noqa: BLE001
            warn(f"directions not written: {type(e).__name__}: {e}")

    def _record(self, f) -> None:
        if self.world.main:
            self.run.log_finding(asdict(f))

    def check_health(self, rec: dict[str, Any]) -> Rollback | None:
        """Feed a record to the detectors and act on what they find (train.on_failure): warn, stop (an
        error), or roll back (returned: the loop continues from it)."""
        p, t = self.p, self.p.cfg.train
        for f in self.monitor.observe(rec):
            say(f.line())
            if f.severity == "error" and t.on_failure == "stop":
                f.action = "stopped the run"
                self._record(f)
                raise GankitError(f"training stopped at step {p.step} (train.on_failure=stop): {f.line()}")
            if f.severity == "error" and t.on_failure == "rollback":
                rolled = self._roll_back(reason=f.name, remedy=f.suggestion, before=f.since)
                f.action = f"rolled back to step {rolled.step} and set {_change(f.suggestion)}"
                self._record(f)
                return rolled
            f.action = "warned"
            self._record(f)
        return None

    def nonfinite_rollback(self, n: int) -> Rollback:
        t = self.p.cfg.train
        return self._roll_back(reason=f"{n} non-finite steps in a row", remedy={"train.lr_g": t.lr_g / 2, "train.lr_d": t.lr_d / 2})

    def _roll_back(self, reason: str, remedy: dict[str, Any], before: int | None = None) -> Rollback:
        """The one remedy path (health and non-finite alike): restore the newest checkpoint saved before
        step `before` (else the oldest kept), apply `remedy` (config key -> value) or stop; then the
        monitor judges afresh from there and config.yaml holds the config the run now trains with."""
        p = self.p
        rolled = _rollback_or_stop(p, self.run, reason, remedy, before)
        self.monitor.rolled_back(p.step, p.cfg)
        if self.world.main:
            self.run.write_config(dump_yaml(p.cfg))
        return rolled


def save_samples(p: RunState, ds: Dataset, path: Path, fixed_seed: int) -> Path:
    """A fixed-seed grid from G_ema (2D data: a scatter over the real points; translation: rows of
    input, output and target for fixed training pairs, by the network `gankit translate` uses)."""
    G_ema = recalibrated_ema(p)
    if ds.kind == "pairs":
        from ..artefact.translation import translation_grid

        save_grid(translation_grid(G_ema, ds, fixed_seed), path, nrow=3)
    elif ds.kind == "points":
        x, _ = generate(G_ema, 2500, p.spec.z_dim, p.spec.num_classes, p.device, seed=fixed_seed)
        real = ds.x[torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:2500]]
        save_scatter(real.numpy(), x.numpy(), path)
    else:
        ncls = p.spec.num_classes
        n = 100 if ncls == 10 else 64
        x, _ = generate(G_ema, n, p.spec.z_dim, ncls, p.device, seed=fixed_seed)
        save_grid(x, path, nrow=10 if ncls == 10 else None)
    return path


def save_real_grid(ds: Dataset, num_classes: int, path: Path) -> None:
    """Real images laid out as the generated grids are (classes in turn), for the report to show beside them."""
    n = min(100 if num_classes == 10 else 64, len(ds))
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
    if num_classes and ds.labels is not None:
        pools = [order[ds.labels[order] == k].tolist() for k in range(num_classes)]
        idx = [pools[k].pop() if pools[k] else int(order[i]) for i, k in enumerate(balanced_labels(n, num_classes).tolist())]
    else:
        idx = order[:n].tolist()
    save_grid(ds.to_float(torch.tensor(idx)), path, nrow=10 if num_classes == 10 else None)


def save_reconstructions(p: RunState, ds: Dataset, path: Path) -> Path:
    """A VAE's reconstructions of 8 fixed real images (rows: real, then reconstructed), encoder in eval mode."""
    from ..models.vae import reconstruction_rows

    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:8]
    save_grid(reconstruction_rows(p.D, recalibrated_ema(p), ds.to_float(idx).to(p.device)), path, nrow=8)
    return path


def metrics_record(p: RunState, acc: dict[str, torch.Tensor], n_good: float, images_per_s: float) -> dict[str, Any]:
    """One line of metrics.jsonl: the interval's mean statistics (of the global batch) and the run's counters."""
    rec: dict[str, Any] = {"step": p.step, "images": p.images}
    if n_good > 0:
        rec.update({k: round(float(v) / n_good, 6) for k, v in acc.items()})
    rec.update({"seconds": round(p.wall, 3), "images_per_s": round(images_per_s, 2), "lr_g": p.opt_g.param_groups[0]["lr"],
                "nonfinite": p.counters["nonfinite"], "peak_rss_mb": peak_rss_mb()})
    if p.augment.active:
        rec.update({"augment_p": round(p.augment.p, 5), "r_t": round(p.augment.rt, 5)})
    if p.cfg.schedule.images and p.now is not None:  # what the schedule has reached
        rec.update({"beta2_g": round(p.now.beta2_g, 6), "r1_weight": round(p.now.r1, 8), "r2_weight": round(p.now.r2, 8)})
    return rec


def _change(remedy: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in remedy.items())


def _rollback_or_stop(p: RunState, run: RunFolder, reason: str, remedy: dict[str, Any], before: int | None = None) -> Rollback:
    """Restore the newest checkpoint saved before step `before` (else the oldest kept) into `p` and
    apply `remedy` (config key -> value) to p.cfg, or stop."""
    t = p.cfg.train
    if t.on_failure != "rollback":
        raise GankitError(f"training stopped at step {p.step}: {reason}; lower train.lr_g / train.lr_d or set train.on_failure=rollback")
    if p.counters["rollbacks"] >= t.max_rollbacks:
        raise GankitError(f"training stopped at step {p.step}: {reason} again after {p.counters['rollbacks']} rollbacks "
                          f"(train.max_rollbacks); the last good checkpoint is kept; check the data and the config")
    found = latest_valid(run.checkpoints, before=before)
    if found is None and before is not None:
        found = latest_valid(run.checkpoints, oldest=True)
    if found is None:
        raise GankitError(f"training stopped at step {p.step}: {reason}, and no checkpoint to roll back to")
    rollbacks, nonfinite = p.counters["rollbacks"] + 1, p.counters["nonfinite"]
    cfg = p.cfg
    try:
        new_cfg = make_config(cfg.to_dict(), [f"{k}={v}" for k, v in remedy.items()])
    except ConfigError as e:
        raise GankitError(f"training stopped at step {p.step}: {reason}; the remedy cannot be applied here ({e})") from None
    restore(p, found[1], found[0])
    p.counters.update(rollbacks=rollbacks, nonfinite=nonfinite)
    p.cfg = new_cfg
    if new_cfg.augment != cfg.augment:
        p.augment = Augmenter(new_cfg.augment, new_cfg.train.batch_size, new_cfg.train.seed, p.world.rank, p.world.size)
    if p.world.main:
        run.forget_after(p.step)
        run.log({"step": p.step, "event": "rollback", "reason": reason, "from": str(found[0]), "remedy": _change(remedy),
                 "lr_g": new_cfg.train.lr_g, "lr_d": new_cfg.train.lr_d})
    say(f"rolled back to {found[0]} (step {p.step}) after {reason}; now {_change(remedy)}")
    return Rollback(found[0], p.step, new_cfg)
