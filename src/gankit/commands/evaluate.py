"""`gankit eval` (a run's metrics, appended to its eval.json) and `gankit compare` (several runs
evaluated identically, side by side; with --configs, trained first for a budget)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import GankitError
from ..paths import check_output_file, check_writable


def add(sub) -> None:
    e = sub.add_parser("eval", help="evaluate a run with standard metrics")
    e.add_argument("run", help="a run folder, a checkpoint file or an export folder")
    e.add_argument("--metrics", default=None,
                   help="comma-separated subset of fid,kid,pr,dc,is,classes,modes; a translation run: of l1,psnr,ssim,fid,kid (default all)")
    e.add_argument("--n", type=int, default=5000, help="generated samples (real: the same number or all)")
    e.add_argument("--real", default=None, help="real data source (default: the run's own); a translation run: held-out pairs, read as its training pairs were")
    e.add_argument("--features", default=None, help="inception or classifier (default: inception for images)")
    e.add_argument("--inception", default=None, help="path to the FID Inception TorchScript file")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="cpu")
    e.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    e.set_defaults(fn=evaluate)

    c = sub.add_parser("compare", help="evaluate several runs (GAN, VAE) identically, side by side")
    c.add_argument("runs", nargs="*", help="run folders, checkpoint files or export folders")
    c.add_argument("--configs", nargs="+", default=None, help="train these presets first, each for --budget-minutes")
    c.add_argument("--budget-minutes", type=float, default=0.0, help="wall-clock training budget per config")
    c.add_argument("--set", nargs="*", default=None, metavar="KEY=VALUE", help="overrides applied to every --configs preset")
    c.add_argument("--out", required=True, help="folder for compare.md, compare.png, compare.json (and runs/ with --configs)")
    c.add_argument("--n", type=int, default=5000, help="generated samples per run")
    c.add_argument("--n-real", type=int, default=None, help="real samples (default: as many as --n, or all there are)")
    c.add_argument("--metrics", default=None, help="comma separated, from fid, kid, pr, dc, classes (default: all)")
    c.add_argument("--real", default=None, help="one real data source for all runs (default: the runs' own, which must agree)")
    c.add_argument("--features", default=None, help="classifier (default for labelled data) or inception")
    c.add_argument("--inception", default=None, help="path to the FID Inception TorchScript file")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--device", default="cpu")
    c.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default; --configs trainings use train.threads)")
    c.set_defaults(fn=compare)


def evaluate(a: argparse.Namespace) -> int:
    from ..analysis.evaluate import ALL, evaluate_run
    from ..metrics.paired import PAIRED
    from ..runfolder import RunFolder

    metrics = [m.strip() for m in (a.metrics or "").split(",") if m.strip()]  # none given: all that apply
    if bad := [m for m in metrics if m not in ALL + PAIRED]:
        raise GankitError(f"--metrics: unknown {bad}; choose from {', '.join(ALL)} (generation) or {', '.join(PAIRED)} (translation)")
    if a.n < 10:
        raise GankitError(f"--n: at least 10 samples are needed, got {a.n}")
    target = Path(a.run)
    # eval.json goes into the run (or export) folder: check it can be written before minutes of features
    folder = RunFolder(target) if target.is_dir() else RunFolder.of_checkpoint(target)
    if target.exists():
        check_output_file(folder.eval_results, flag="the run folder")
    res = evaluate_run(a.run, metrics, a.n, a.real, a.features, a.seed, a.inception, a.device)
    out = folder.add_evaluation(res)
    print(format_table(res))
    print(f"wrote {out}")
    return 0


def format_table(res: dict[str, Any]) -> str:
    from ..analysis.evaluate import KID_NOTE

    rows = [(k, v) for k, v in res.items() if k not in ("provenance", "class_hist", "warnings")]
    w = max((len(k) for k, _ in rows), default=6)
    lines = [f"{'metric':<{w}}  value"]
    for k, v in rows:
        if isinstance(v, list) and all(isinstance(x, float) for x in v):
            v = " ".join(f"{x:.4f}" for x in v)
        lines.append(f"{k:<{w}}  {v:.4f}" if isinstance(v, float) else f"{k:<{w}}  {v}")
    pv = res["provenance"]
    feats = pv["features"]["name"] if isinstance(pv["features"], dict) else pv["features"]
    made = (f"generated vs {pv['n_real']} real" if "compared_as" not in pv else "translated, each against its target" if pv["paired"]
            else f"translated vs {pv['n_real']} images of domain B")
    lines.append(f"({pv['n_fake']} {made} from {pv['real']}; features {feats}; seed {pv['seed']})")
    if "kid" in res:
        lines.append(f"({KID_NOTE})")
    lines += [f"warning: {w}" for w in res.get("warnings", [])]
    return "\n".join(lines)


def compare(a: argparse.Namespace) -> int:
    import torch

    from ..api.compare import METRICS, compare_runs, train_for_budget
    from ..metrics.paired import PAIRED

    out = Path(a.out)
    runs = list(a.runs)
    if a.n < 10:
        raise GankitError(f"--n: at least 10 samples are needed, got {a.n}")
    if a.n_real is not None and a.n_real < 10:
        raise GankitError(f"--n-real: at least 10 real samples are needed, got {a.n_real}")
    metrics = [m for m in (a.metrics or "").split(",") if m] or None  # none: all that apply to the runs' kind
    if metrics is not None and (bad := [m for m in metrics if m not in METRICS + PAIRED]):
        raise GankitError(f"--metrics: unknown {bad}; choose from {', '.join(METRICS)} (generation) or {', '.join(PAIRED)} (translation)")
    check_writable(out, flag="--out")
    if a.configs:
        if not a.budget_minutes or a.budget_minutes <= 0:
            raise GankitError("--budget-minutes: give a positive budget when training --configs")
        runs += train_for_budget(a.configs, a.budget_minutes, out, list(a.set or []), a.real)
    elif a.budget_minutes:
        raise GankitError("--budget-minutes: only applies with --configs")
    torch.manual_seed(a.seed)
    rows = compare_runs(runs, out, a.n, a.seed, a.real, a.features, a.inception, a.device, a.n_real, metrics)
    print((out / "compare.md").read_text())
    print(f"wrote {out / 'compare.md'} and {out / 'compare.png'} ({len(rows)} runs)")
    return 0
