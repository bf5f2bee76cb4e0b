"""The training loop: one function, readable top to bottom."""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import torch
from tqdm import tqdm

from .. import console
from ..checkpoint import latest_valid, list_checkpoints, load_checkpoint, remove_stale_temporaries
from ..config import Config, dump_yaml
from ..console import say
from ..data import Dataset, load_dataset
from ..errors import GankitError
from ..paths import check_writable
from ..runfolder import RunFolder
from ..runlock import RunLock
from . import schedule
from .cpu import auto_threads
from .dist import LaggedAgreement, World, check_divisible, init_world, is_collective_failure, peer_lost
from .duties import Duties
from .preflight import check_batch, preflight
from .state import RunState, build_state, data_difference, data_meta, ema_update, restore
from .steps import STEPS, Tools


class Interrupted(GankitError):
    """SIGTERM or Ctrl-C: the run saved a checkpoint and stopped."""


def train(cfg: Config, out: Path, resume: str | tuple[Path, dict] | None = None, ds: Dataset | None = None, quiet: bool = False) -> RunState:
    """Train according to `cfg` into run folder `out`; returns the final state. `resume`: "auto" (the
    folder's newest valid checkpoint, if any), a checkpoint path, or (path, state) as `resume.resolve`
    read it. `quiet`: no notes, no progress."""
    world = init_world(cfg.train.device)  # one process, or one of torchrun's
    lock = RunLock(out) if world.main else None  # one trainer per run folder
    with console.quiet(quiet or not world.main):
        try:
            if lock is not None:
                lock.acquire()
            return _train(cfg, out, resume, ds, world)
        except RuntimeError as e:  # a collective inside autograd failed: a peer died
            if world.multi and is_collective_failure(e):
                raise peer_lost(e) from None
            raise
        finally:
            if lock is not None:
                lock.release()
            world.close()


def _start(cfg: Config, run: RunFolder, resume: str | tuple[Path, dict] | None, ds: Dataset | None,
           world: World) -> tuple[RunState, Dataset, dict, bool]:
    """Everything before the first step: threads, the cheap checks (the run folder, then the config
    against the data's description; only then decoding), the run state (resumed when asked), the config on
    disk. Returns the state, the data, its description, and whether the run has nothing left to do."""
    t, out = cfg.train, run.root
    if t.threads:
        torch.set_num_threads(t.threads)
    elif not world.multi and "OMP_NUM_THREADS" not in os.environ:  # torchrun and the user set their own
        torch.set_num_threads(auto_threads())  # the cores idle now (`cpu.auto_threads`)
    check_divisible(world, t.batch_size, cfg.model.pac)
    start_state = None
    if isinstance(resume, tuple):  # read by `resume.resolve`
        start_state = resume
    elif resume == "auto":
        start_state = latest_valid(run.checkpoints)
    elif resume:
        start_state = (Path(resume), load_checkpoint(Path(resume)))
    elif list_checkpoints(run.checkpoints):
        raise GankitError(f"{out}: already holds a run; continue it with --resume auto, or choose another --out")
    if world.main:
        check_writable(out)
    if ds is None:
        ds = load_dataset(cfg.data, check=lambda probe: preflight(cfg, probe))
    else:
        preflight(cfg, ds.probe())
    for note in ds.notes:
        say(note)
    check_batch(t.batch_size, len(ds), ds.kind)
    p = build_state(cfg, ds, world)
    meta = data_meta(ds)
    param_bytes = sum(x.numel() * 4 for m in (p.G, p.D) for x in m.parameters())
    if world.main:
        check_writable(out, need_bytes=param_bytes * 5 * (t.keep_checkpoints + 1) + (16 << 20))
    if world.main and (stale := remove_stale_temporaries(run.checkpoints)):
        say(f"removed {stale} half-written checkpoint file(s) left by an interrupted save")
    if start_state is not None:
        theirs = start_state[1].get("data", {}).get("fingerprint")
        if theirs is not None and theirs != meta["fingerprint"]:
            raise GankitError(f"{start_state[0]}: was trained on other data ({data_difference(start_state[1]['data'], meta)} now); "
                              "resume it on the same data")
        restore(p, start_state[1], start_state[0])
        if p.step >= t.steps or (t.max_minutes > 0 and p.wall >= 60 * t.max_minutes):  # nothing to train: leave the run as it is
            say(f"{out}: already finished at step {p.step}: {stop_reason(p.step, t)}")
            return p, ds, meta, True
        if world.main:
            run.forget_after(p.step)
        say(f"resumed from {start_state[0]} at step {p.step}")
    for m in (p.G, p.D, p.G_ema):  # every rank starts from rank 0's weights and buffers
        world.broadcast_module(m)
    if world.main:
        run.write_config(dump_yaml(cfg))
        run.samples.mkdir(parents=True, exist_ok=True)
    say(start_line(ds, cfg, p.device, out, world))
    return p, ds, meta, False


def _train(cfg: Config, out: Path, resume: str | tuple[Path, dict] | None, ds: Dataset | None, world: World) -> RunState:
    t, run = cfg.train, RunFolder(out)
    p, ds, meta, finished = _start(cfg, run, resume, ds, world)
    if finished:
        return p

    step = STEPS.get(cfg.model.family)  # this model family's step, and what it works with
    tools = Tools.for_run(p, ds, world)
    guard = tools.guard
    duties = Duties(p, ds, run, meta, world)  # metrics line, health, grids, evaluation, checkpoints

    bar = tqdm(total=t.steps, initial=p.step, disable=console.is_quiet() or not console.on_terminal(), dynamic_ncols=True)
    acc: dict[str, torch.Tensor] = {}
    acc_n, nonfinite_run = 0, 0
    t_start, t_interval, img_interval = time.perf_counter(), time.perf_counter(), p.images
    wall0 = p.wall
    agree = LaggedAgreement(world)  # stop signals and the time budget, agreed without a blocking collective per step
    with stop_signals() as stop, closing(bar), closing(duties):
        budget_spent = t.max_minutes > 0 and wall0 >= 60 * t.max_minutes  # a resumed run that already used its time
        while p.step < t.steps and not budget_spent:
            schedule.apply(p)  # this step's learning rates, beta2, penalty weights, augmentation p
            guard.begin()
            finite, stats = step(p, tools)

            # Non-finite values: skip the step; after several in a row, roll back (and continue from
            # the restored step with the remedied config) or stop
            if not finite:
                p.counters["nonfinite"] += 1
                nonfinite_run += 1
                p.opt_g.zero_grad(set_to_none=True)
                p.opt_d.zero_grad(set_to_none=True)
                if nonfinite_run >= t.max_nonfinite:
                    nonfinite_run = 0
                    cfg = duties.nonfinite_rollback(t.max_nonfinite).cfg
                    t = cfg.train
                continue
            nonfinite_run = 0
            guard.end()

            # update G_ema
            p.step += 1
            ema_update(p.G_ema, p.G, ema_beta(t, p.step) if p.step > t.ema_start else 0.0)
            for k, v in stats.items():
                acc[k] = acc[k] + v if k in acc else v.clone()
            acc_n = acc_n + guard.good()
            bar.update(1)

            # once per interval (and at the last step, or when the time budget is spent):
            # metrics line, grid, evaluation, checkpoint
            now = time.perf_counter()
            over = t.max_minutes > 0 and wall0 + now - t_start >= 60 * t.max_minutes
            over, stopping = agree(over, stop["sig"] is not None)  # every rank stops at the same step (one step later)
            last = p.step == t.steps or over
            if p.step % t.log_every == 0 or last:
                p.wall = wall0 + (now - t_start)
                skipped, in_a_row = guard.flush()  # deferred checks: read once per interval
                p.counters["nonfinite"] += skipped
                rec = duties.metrics_line(acc, float(acc_n), (p.images - img_interval) / max(now - t_interval, 1e-9))
                shown = {k: f"{rec[k]:.3g}" for k in ("loss_d", "loss_g", "loss") if k in rec} | {"img/s": f"{rec['images_per_s']:.0f}"}
                bar.set_postfix(shown)
                if bar.disable:  # no terminal: a plain line instead of the bar
                    say(f"step {p.step}/{t.steps}  " + "  ".join(f"{k} {v}" for k, v in shown.items()) + f"  ({p.wall:.0f} s)")
                acc, acc_n = {}, 0
                t_interval, img_interval = now, p.images
                rolled = duties.check_health(rec)
                if rolled is None and in_a_row >= t.max_nonfinite:
                    guard.run.zero_()
                    rolled = duties.nonfinite_rollback(in_a_row)
                if rolled is not None:  # continue from the restored step, with the remedied config
                    cfg, t = rolled.cfg, rolled.cfg.train
                    continue
            if p.step % t.sample_every == 0 or last:
                duties.grid()
            if duties.snapshots is not None and (p.step % duties.snapshot_every == 0 or last):
                duties.snapshot()
            if duties.evaluator is not None and (p.step % cfg.eval.every == 0 or last):
                if (rolled := duties.evaluate()) is not None:
                    cfg, t = rolled.cfg, rolled.cfg.train
                    continue
            if p.step % t.checkpoint_every == 0 or last:
                p.wall = wall0 + (time.perf_counter() - t_start)
                duties.save()
            if last:
                break
            if stopping:
                agree.close()
                p.wall = wall0 + (time.perf_counter() - t_start)
                path = duties.save()
                name = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C", None: "a stop signal to another process"}[stop["sig"]]
                raise Interrupted(f"{name}: saved step {p.step} to {path}; continue with --resume auto --out {out}")
        agree.close()
    say(f"done: {p.step} steps in {p.wall:.0f} s ({stop_reason(p.step, t)}); run folder {out}")
    return p


@contextmanager
def stop_signals() -> Iterator[dict]:
    """SIGTERM and Ctrl-C only set `stop["sig"]` inside the block (the loop saves at the next step
    boundary); the previous handlers come back after it. Signals reach only the main thread."""
    stop: dict = {"sig": None}

    def on_signal(signum, _frame):
        stop["sig"] = signum

    main_thread = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)} if main_thread else {}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def stop_reason(step: int, t) -> str:
    """Why a run stopped where it did, and what to raise to train on."""
    if step >= t.steps:
        return f"reached train.steps={t.steps}; raise it to train on"
    return (f"the time budget train.max_minutes={t.max_minutes:g} is spent; to train on, resume with a larger one "
            f"(--resume auto train.max_minutes={2 * t.max_minutes:g}) or train.max_minutes=0 for none")


def ema_beta(t, step: int) -> float:
    """G_ema's decay per step: half-life `ema_halflife` images, capped at `ema_rampup` of the images
    generated so far (StyleGAN2-ADA's ramp-up), so that a short run's G_ema is not its random start."""
    if t.ema_halflife <= 0:
        return 0.0
    half = t.ema_halflife if t.ema_rampup <= 0 else min(t.ema_halflife, t.ema_rampup * step * t.batch_size)
    return 0.5 ** (t.batch_size / max(half, 1e-8))


def start_line(ds: Dataset, cfg: Config, device: torch.device, out: Path, world: World) -> str:
    """What was loaded and where the run goes, in one line."""
    what = {"image": f"{len(ds)} images {'x'.join(map(str, ds.shape))}", "points": f"{len(ds)} 2D points",
            "pairs": f"{len(ds)} pairs {ds.in_channels}x{'x'.join(map(str, ds.shape[1:]))} -> {'x'.join(map(str, ds.shape))}"}[ds.kind]
    classes = ""
    if ds.num_classes >= 2 and ds.kind == "image":
        named = ds.class_names != [str(i) for i in range(ds.num_classes)]  # names that say more than the index
        names = ", ".join(ds.class_names[:10]) + (", ..." if len(ds.class_names) > 10 else "") if named else ""
        classes = f", {ds.num_classes} classes" + (f" ({names})" if names else "")
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    procs = f" x {world.size} processes (global batch {cfg.train.batch_size})" if world.multi else ""
    return (f"data: {what}{classes} from {ds.name}; {cfg.model.family} {cfg.model.arch}; device {device}{threads}{procs}; "
            f"run folder {out}")
