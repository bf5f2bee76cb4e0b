"""Training health: detectors that read the metrics stream and explain what went wrong.

The detectors see only the records written to `metrics.jsonl` (one per log interval,
plus evaluation records), so the same code judges a run while it trains and replays
a finished or running run for `gankit doctor`. Each finding carries a name, a plain
explanation, the evidence (numbers and the steps where they moved) and one concrete
change (config key and value) that the rollback can apply.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import torch

from ..jsonl import read_jsonl
from ..models.layers import evaluating
from ..runfolder import RunFolder

# thresholds (all relative to the run's own early behaviour or to real data)
WARMUP = 3  # log intervals before any judgement (the first steps of any GAN look odd)
COLLAPSE_RATIO = 0.35  # sample diversity below this fraction of real data's
COLLAPSE_MODES = 0.5  # 2D mixtures: fewer than this fraction of modes captured
D_WIN_ACC = 0.99  # D accuracy on real vs generated
G_STARVED = 0.1  # G gradient norm below this fraction of its early median
LOSING = 2.0  # or G's loss above this multiple of its early median, and rising
EXPLODE = 25.0  # loss or gradient norm this many times its early median
ABS_LOSS, ABS_GRAD = 1e3, 1e4  # beyond these a loss or gradient norm has blown up whatever its start
JUMP, LOOKBACK = 8.0, 5  # a gradient norm that blows up grows more than JUMP-fold within LOOKBACK intervals;
# one that climbed slowly to a new level (grid25: 0.5 -> 16 over 2,000 steps, losses steady) is not diverging
SWING_MIN, SWING_REL = 2.0, 1.0  # G-loss swings larger than this (absolute, and relative to the loss level)
OVERFIT_RT, OVERFIT_ACC = 0.9, 0.95  # ADA's r_t = E[sign(D(real))], and D's accuracy
SMALL_DATA = 10_000
JUDGE_AFTER, JUDGE_MIN_STEPS = 0.25, 200  # fraction of the run (and steps) before judging slow-building problems
CLEAR_AFTER = 10  # clean intervals before a finding that fired may be reported again
PATIENCE = 3  # consecutive intervals (evaluations for the metric) before a finding


@dataclass
class Finding:
    name: str
    step: int
    since: int  # first step of the evidence
    explanation: str
    evidence: dict[str, Any]
    suggestion: dict[str, Any]  # config key -> value
    severity: str = "error"  # error: the run is going wrong; warning: worth a look
    action: str = ""

    def line(self) -> str:
        fix = ", ".join(f"{k}={v}" for k, v in self.suggestion.items())
        return f"health: {self.name} at step {self.step} (since step {self.since}): {self.explanation} Try {fix}."


EXPLAIN = {
    "mode_collapse": "the generator's samples have become far less varied than the real data: it is producing only a few "
                     "kinds of output (mode collapse). Stronger regularisation of D, or packing samples (PacGAN), restores variety.",
    "d_overpowering": "the discriminator separates real from generated almost perfectly and the generator's gradients have "
                      "faded: G no longer learns. Slowing D down (a lower D learning rate) lets G catch up.",
    "divergence": "losses or gradient norms have grown far beyond their early values, or swing back and forth with an "
                  "amplitude as large as the losses themselves: the optimisation is unstable. Lower learning rates bring it back.",
    "d_overfitting": "on this small dataset the discriminator is confident on nearly every real image (r_t high): it has "
                     "memorised the training set, and its feedback to G degrades. Augmenting D's inputs (DiffAugment, adaptive) fixes this.",
    "non_finite": "NaN or infinite values appeared in the losses or gradients, and those steps were skipped. Lower learning "
                  "rates, or bf16 off, usually cure it.",
    "metric_regression": "the evaluation metric has got worse for several evaluations in a row after its best value: "
                         "training is now degrading the model. The best checkpoint is the one to keep; decaying the "
                         "learning rate avoids it next time.",
}


@dataclass
class HealthMonitor:
    """Feed it metrics records in order; it returns the new findings."""

    lr_g: float
    lr_d: float
    r1: float
    data_size: int
    augmenting: bool = False
    total_steps: int = 0  # slow-building problems (collapse, overfitting) are judged after JUDGE_AFTER of it
    max_minutes: float = 0.0  # a time budget: the run's length is then what the budget allows at its pace
    history: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)  # finding name -> step it fired
    clean: dict[str, int] = field(default_factory=dict)  # finding name -> clean intervals since

    @classmethod
    def for_run(cls, cfg: Any, data_size: int) -> HealthMonitor:
        """A monitor for a run of config `cfg` on `data_size` examples."""
        t = cfg.train
        return cls(t.lr_g, t.lr_d, cfg.loss.r1, data_size, bool(cfg.augment.policy), t.steps, t.max_minutes)

    def rolled_back(self, step: int, cfg: Any) -> None:
        """The run continues from `step` with `cfg` (a rollback's remedy applied): judged afresh from there."""
        self._afresh(step)
        self.lr_g, self.lr_d, self.r1, self.augmenting = cfg.train.lr_g, cfg.train.lr_d, cfg.loss.r1, bool(cfg.augment.policy)

    def _afresh(self, step: int) -> None:
        """Forget what was seen after `step` and every open finding, keeping the same early baseline."""
        self.history = [h for h in self.history if h["step"] <= step][:WARMUP + 2]
        self.active.clear()
        self.clean.clear()

    def observe(self, rec: dict[str, Any]) -> list[Finding]:
        if "event" in rec:
            if rec["event"] == "rollback":  # a replayed metrics.jsonl: the record holds the new learning rates
                self._afresh(rec["step"])
                self.lr_g, self.lr_d = rec.get("lr_g", self.lr_g), rec.get("lr_d", self.lr_d)
            return []
        if any(k.startswith("eval_") for k in rec):
            self.evals.append(rec)
            return self._fire([self._metric_regression()], interval=False)
        if "images" not in rec:
            return []
        self.history.append(rec)
        if len(self.history) <= WARMUP:
            return []
        checks = [self._non_finite(), self._divergence() or self._oscillation(), self._d_overpowering()]
        if self.history[-1]["step"] >= judged_from(self.total_steps, self.max_minutes, self.history[-1]):  # an untrained G is not collapsed
            checks.append(self._collapse())
            if checks[2] is None:  # D winning outright explains a high r_t better than memorisation does
                checks.append(self._d_overfitting())
        return self._fire(checks)

    def _fire(self, found: list[Finding | None], interval: bool = True) -> list[Finding]:
        new = []
        for f in found:
            if f is None:
                continue
            if f.name not in self.active:  # report each problem once until it clears
                self.active[f.name] = f.step
                new.append(f)
        names = {f.name for f in found if f is not None}
        for name in list(self.active) if interval else []:  # reported again only after CLEAR_AFTER clean intervals
            if name in names or name == "metric_regression":
                self.clean[name] = 0
            else:
                self.clean[name] = self.clean.get(name, 0) + 1
                if self.clean[name] >= CLEAR_AFTER:
                    del self.active[name], self.clean[name]
        return new

    # --- helpers ---
    def _series(self, key: str, last: int | None = None, first: int | None = None) -> list[tuple[int, float]]:
        """(step, value) of the records holding a finite `key`; only the `last` (or `first`) few, read
        from that end, so that each record costs the same however long the run (a 100,000-step run
        logged every 10 steps is 10,000 records)."""
        want = last if last is not None else first
        # records lacking the key (eval lines, a key logged only now and then) are skipped, but the
        # scan stops after a bounded number of records, so an absent key costs little too
        span = 4 * want + 50
        rows = self.history[-span:][::-1] if last is not None else self.history[:span]
        out = []
        for rec in rows:
            v = rec.get(key)
            if isinstance(v, (int, float)) and math.isfinite(v):
                out.append((rec["step"], float(v)))
                if len(out) == want:
                    break
        return out[::-1] if last is not None else out

    def _early(self, key: str) -> float | None:
        vals = [v for _, v in self._series(key, first=WARMUP + 2)[1:]]  # skip the very first interval
        return median(vals) if vals else None

    def _recent(self, key: str, n: int = PATIENCE) -> list[tuple[int, float]]:
        s = self._series(key, last=n)
        return s if len(s) >= n and s[-1][0] == self.history[-1]["step"] else []

    def _finding(self, name: str, since: int, evidence: dict[str, Any], suggestion: dict[str, Any], severity: str = "error") -> Finding:
        return Finding(name, self.history[-1]["step"] if self.history else since, since, EXPLAIN[name], evidence, suggestion, severity)

    # --- detectors ---
    def _non_finite(self) -> Finding | None:
        h = self.history
        if len(h) >= 2 and h[-1].get("nonfinite", 0) > h[-2].get("nonfinite", 0):
            return self._finding("non_finite", h[-2]["step"], {"skipped_steps": h[-1]["nonfinite"] - h[-2].get("nonfinite", 0)},
                                 {"train.lr_g": self.lr_g / 2, "train.lr_d": self.lr_d / 2}, "warning")
        return None

    def _divergence(self) -> Finding | None:
        for key in ("grad_norm_d", "grad_norm_g", "loss_d", "loss_g", "loss"):
            early, recent = self._early(key), self._recent(key, 2)
            if early is None or not recent:
                continue
            ref = max(abs(early), 1e-3 if key.startswith("grad") else 1.0)
            # absolute limits only where healthy values are O(1..100): not for a VAE's loss (nats per image)
            limit = EXPLODE * ref if key == "loss" else min(EXPLODE * ref, ABS_GRAD if key.startswith("grad") else ABS_LOSS)
            if all(abs(v) > limit for _, v in recent):
                if key.startswith("grad") and self._climbed_slowly(key, recent):
                    continue
                return self._finding("divergence", recent[0][0], {"pattern": "exploding", key: [round(v, 4) for _, v in recent],
                                                                  f"{key}_early": round(early, 4)},
                                     {"train.lr_g": self.lr_g / 4, "train.lr_d": self.lr_d / 4})
        return None

    def _climbed_slowly(self, key: str, recent: list[tuple[int, float]]) -> bool:
        """A gradient norm below the absolute limit that grew less than JUMP-fold over the LOOKBACK
        intervals before `recent`: a new, stable level rather than a blow-up."""
        s = self._series(key, last=len(recent) + LOOKBACK)
        if max(abs(v) for _, v in recent) >= ABS_GRAD or len(s) < len(recent) + LOOKBACK:
            return False
        before = abs(s[-len(recent) - LOOKBACK][1])
        return min(abs(v) for _, v in recent) < JUMP * max(before, 1e-12)

    def _oscillation(self) -> Finding | None:
        """Divergence by swinging: G's loss flips direction nearly every interval with an
        amplitude as large as the loss itself."""
        s = self._recent("loss_g", 6)
        if not s:
            return None
        d = [b - a for (_, a), (_, b) in itertools.pairwise(s)]
        flips = sum(1 for a, b in itertools.pairwise(d) if a * b < 0)
        amp, level = median(abs(x) for x in d), median(abs(v) for _, v in s)
        if flips >= 3 and amp > max(SWING_MIN, SWING_REL * level):
            return self._finding("divergence", s[0][0], {"pattern": "swinging", "loss_g": [round(v, 3) for _, v in s]},
                                 {"train.lr_g": self.lr_g / 4, "train.lr_d": self.lr_d / 4})
        return None

    def _collapse(self) -> Finding | None:
        div = self._recent("diversity")
        if div and all(v < COLLAPSE_RATIO for _, v in div):
            return self._finding("mode_collapse", div[0][0], {"diversity_vs_real": [round(v, 3) for _, v in div]},
                                 {"loss.r1": max(1.0, 2 * self.r1)})
        modes, total = self._recent("modes_visited"), self.history[-1].get("modes_total")
        before = [v for _, v in self._series("modes_visited", last=2 * PATIENCE)[:-PATIENCE]]
        growing = bool(modes and before and max(v for _, v in modes) > max(before))  # still spreading out: not yet judged
        if modes and total and not growing and all(v < COLLAPSE_MODES * total for _, v in modes):
            return self._finding("mode_collapse", modes[0][0], {"modes_visited": [int(v) for _, v in modes], "modes_total": total},
                                 {"loss.r1": max(1.0, 2 * self.r1)})
        return None

    def _d_overpowering(self) -> Finding | None:
        """D near-perfect for PATIENCE intervals while G either gets (almost) no gradient or
        keeps losing ground (its loss rising through the window, well above its early level)."""
        acc, gn, lg = self._recent("d_acc"), self._recent("grad_norm_g"), self._recent("loss_g")
        gn0, lg0 = self._early("grad_norm_g"), self._early("loss_g")
        if not (acc and all(v >= D_WIN_ACC for _, v in acc)):
            return None
        starved = bool(gn and gn0 and all(v < G_STARVED * gn0 for _, v in gn))
        losing = bool(lg and lg0 is not None and lg[-1][1] > lg[0][1] and all(v > LOSING * max(lg0, 0.1) for _, v in lg))
        if starved or losing:
            return self._finding("d_overpowering", acc[0][0], {"d_acc": [round(v, 4) for _, v in acc],
                                 "grad_norm_g": [round(v, 5) for _, v in gn], "grad_norm_g_early": gn0,
                                 "loss_g": [round(v, 3) for _, v in lg], "loss_g_early": lg0}, {"train.lr_d": self.lr_d / 4})
        return None

    def _d_overfitting(self) -> Finding | None:
        """Small data, D sure of nearly every training image (ADA's r_t) and separating them
        from generated ones, while G is still learning (else it is d_overpowering)."""
        if self.data_size >= SMALL_DATA:
            return None
        rt, acc = self._recent("r_t"), self._recent("d_acc")
        if rt and acc and all(v >= OVERFIT_RT for _, v in rt) and all(v >= OVERFIT_ACC for _, v in acc):
            sugg = {"augment.adaptive": True} if self.augmenting else {"augment.policy": "color,translation,cutout", "augment.adaptive": True}
            return self._finding("d_overfitting", rt[0][0], {"r_t": [round(v, 3) for _, v in rt], "d_acc": [round(v, 3) for _, v in acc],
                                                            "dataset_size": self.data_size}, sugg, "warning")
        return None

    def _metric_regression(self) -> Finding | None:
        key = next((k for k in ("eval_fid", "eval_kid") if self.evals and k in self.evals[-1]), None)
        vals = [(e["step"], float(e[key])) for e in self.evals if key and isinstance(e.get(key), (int, float))]
        if len(vals) < PATIENCE + 1:
            return None
        best_i = min(range(len(vals)), key=lambda i: vals[i][1])
        after = vals[best_i:]
        if len(after) > PATIENCE and all(b[1] > a[1] for a, b in zip(after[-PATIENCE - 1:], after[-PATIENCE:])) and after[-1][1] > 1.2 * vals[best_i][1]:
            f = Finding("metric_regression", vals[-1][0], vals[best_i][0], EXPLAIN["metric_regression"],
                        {key[5:]: [round(v, 3) for _, v in after], "best_step": vals[best_i][0]}, {"train.lr_decay": "linear"}, "warning")
            return f
        return None


# --- measurements the loop adds to each metrics record ---

def pairwise_spread(x: torch.Tensor) -> float:
    """Mean pairwise Euclidean distance of a batch (images pooled to at most 16 px)."""
    x = x.float()
    if x.dim() == 4 and x.shape[-1] > 16:
        x = torch.nn.functional.adaptive_avg_pool2d(x, 16)
    f = x.flatten(1)
    d = torch.cdist(f, f)
    n = len(f)
    return float(d.sum() / (n * (n - 1)))


def modes_visited(points, centres) -> tuple[int, float]:
    """Mixture components that draw at least 1% of the samples within a quarter of the
    smallest distance between components, and the fraction of samples that are that close
    to some component (high with few components visited: the samples have settled on them)."""
    import numpy as np

    d = np.linalg.norm(points[:, None, :] - centres[None], axis=2)
    cd = np.linalg.norm(centres[:, None] - centres[None], axis=2)
    close = d.min(1) < 0.25 * cd[cd > 0].min()
    counts = np.bincount(d.argmin(1)[close], minlength=len(centres))
    return int((counts >= 0.01 * len(points)).sum()), float(close.mean())


class DiversityProbe:
    """Sample spread on a fixed latent batch, relative to the same statistic on real data."""

    def __init__(self, ds, z_dim: int, num_classes: int, n: int = 64, seed: int = 4321):
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(ds), generator=g)[:n]
        self.real = pairwise_spread(ds.to_float(idx))
        self.z = torch.randn(n, z_dim, generator=g)
        self.y = (torch.arange(n) % num_classes) if num_classes else None
        self.centres = ds.centres.numpy() if getattr(ds, "centres", None) is not None else None
        self.points_z = torch.randn(500, z_dim, generator=g) if self.centres is not None else None

    @torch.no_grad()
    def __call__(self, G: torch.nn.Module, device: torch.device) -> dict[str, Any]:
        with evaluating(G):
            y = self.y.to(device) if self.y is not None else None
            out = {"diversity": round(pairwise_spread(G(self.z.to(device), y).cpu()) / max(self.real, 1e-12), 4)}
            if self.centres is not None:
                pts = G(self.points_z.to(device), None).float().cpu().numpy()
                visited, settled = modes_visited(pts, self.centres)
                out.update({"modes_visited": visited, "modes_total": len(self.centres), "on_modes": round(settled, 4)})
        return out


# --- health.jsonl and `gankit doctor` ---

def judged_from(total_steps: int, max_minutes: float, last: dict[str, Any]) -> int:
    """The step from which slow-building problems are judged: JUDGE_AFTER of the run's length (at
    least JUDGE_MIN_STEPS). With a time budget the length is the steps the budget allows at the pace
    so far (`last`: the newest metrics record), when that is fewer than train.steps."""
    total = float(total_steps)
    if max_minutes > 0 and last.get("seconds", 0) > 0:
        total = min(total, last["step"] * 60 * max_minutes / last["seconds"])
    return max(math.ceil(JUDGE_AFTER * total), JUDGE_MIN_STEPS)


def replay(metrics_path: Path, cfg) -> list[Finding]:
    """Run the detectors over a run's metrics.jsonl (finished or still running)."""
    mon = HealthMonitor.for_run(cfg, 0)
    found = []
    for rec in read_jsonl(metrics_path):
        if "dataset_size" in rec:
            mon.data_size = rec["dataset_size"]
        found += mon.observe(rec)
    return found


def doctor(run: Path) -> tuple[str, int]:
    """A report for a run folder and its verdict; returns (text, number of findings)."""
    from ..config import load_yaml, make_config
    from ..errors import GankitError

    folder = RunFolder(run)
    metrics = folder.metrics
    if not metrics.is_file() or not folder.config.is_file():
        raise GankitError(f"{run}: not a run folder (no metrics.jsonl and config.yaml)")
    cfg = make_config(load_yaml(folder.config))
    logged = []  # written during training: they survive a rollback that truncates metrics.jsonl
    hp = folder.health
    if hp.is_file():
        for r in read_jsonl(hp):
            try:
                logged.append(Finding(**r))
            except TypeError:
                continue
    seen = {(f.name, f.since) for f in logged}
    found = sorted(logged + [f for f in replay(metrics, cfg) if (f.name, f.since) not in seen], key=lambda f: f.step)
    actions = {(f.name, f.step): f.action for f in logged if f.action}
    lines = []
    recs = [r for r in read_jsonl(metrics) if "images" in r]
    last = recs[-1] if recs else {}
    lines.append(f"run {run}: {last.get('step', 0)} steps logged, {len(found)} finding(s)")
    for f in found:
        lines.append("")
        lines.append(f"[{f.severity}] {f.name} at step {f.step} (evidence since step {f.since})")
        lines.append(f"  why: {f.explanation}")
        lines.append(f"  evidence: {json.dumps(f.evidence)}")
        lines.append(f"  try: {' '.join(f'{k}={v}' for k, v in f.suggestion.items())}")
        if (f.name, f.step) in actions:
            lines.append(f"  done during training: {actions[(f.name, f.step)]}")
    errors = [f for f in found if f.severity == "error"]
    rolled = sum(1 for a in actions.values() if a.startswith("rolled back"))
    last_step = int(last.get("step", 0))
    starts = (WARMUP + 1) * cfg.train.log_every  # the first interval any detector judges
    full = max(starts, judged_from(cfg.train.steps, cfg.train.max_minutes, last))  # collapse and overfitting too
    if not found and last_step < starts:
        verdict = f"verdict: too early to judge ({last_step} steps; the detectors start after step {starts})"
    elif not found and last_step < full:
        verdict = (f"verdict: no finding yet, but too early to judge fully ({last_step} steps; mode collapse and "
                   f"overfitting are judged from step {full})")
    elif not found:
        verdict = "verdict: healthy (no detector fired)"
    elif not errors:
        verdict = f"verdict: healthy with {len(found)} warning(s): {', '.join(sorted({f.name for f in found}))}"
    elif rolled and actions.get((errors[-1].name, errors[-1].step), "").startswith("rolled back"):
        verdict = f"verdict: recovered ({rolled} rollback(s) after {', '.join(sorted({f.name for f in errors}))})"
    else:
        verdict = f"verdict: unhealthy: {errors[-1].name} at step {errors[-1].step} (evidence since step {errors[-1].since}); try " + \
            " ".join(f"{k}={v}" for k, v in errors[-1].suggestion.items())
    lines += ["", verdict]
    return "\n".join(lines), len(found)
