"""`gankit compare`: several runs (GANs, VAEs) measured the same way, side by side.

Every run is evaluated with the same metrics, feature network, real split, sample count
and seed. Runs trained on different data are refused unless `--real` names one real set
that all of them are measured against.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ..analysis.evaluate import KID_NOTE, evaluate_samples, generate_for_eval, real_config, real_data_for
from ..analysis.report import compare_report
from ..artefact.loader import LoadedGenerator, load_generator
from ..config import Config, load_config
from ..console import say
from ..data import probe_dataset
from ..errors import GankitError
from ..metrics.features import default_features
from ..paths import write_atomic
from ..runfolder import RunFolder
from ..training.preflight import check_config
from ..training.state import data_difference
from ..viz import PALETTE, grid_image

METRICS = ("fid", "kid", "pr", "dc", "classes")
GRID = 64  # samples shown per run in compare.png
# (column, key in the evaluation, lower is better)
COLUMNS = (("FID", "fid", True), ("KID", "kid", True), ("precision", "precision", False), ("recall", "recall", False),
           ("density", "density", False), ("coverage", "coverage", False), ("classes", "classes_covered", False),
           ("class KL", "class_kl", True))
PAIRED_COLUMNS = (("L1", "l1", True), ("PSNR", "psnr", False), ("SSIM", "ssim", False), ("FID", "fid", True), ("KID", "kid", True),
                  ("cycle L1", "cycle", True))


def check_before_training(cfgs: list[tuple[str, Config]], real: str | None) -> None:
    """Everything that would otherwise fail after the trainings: each config's own checks, the same
    data for all (unless --real names one set), and --real of the shape the generators make."""
    from ..data import load_dataset

    probes = [(name, check_config(cfg)) for name, cfg in cfgs]
    if real is None:
        first_name, first = cfgs[0]
        first_fp = None
        for name, cfg in cfgs[1:]:
            if cfg.data == first.data:
                continue
            first_fp = first_fp or load_dataset(first.data).fingerprint()
            if load_dataset(cfg.data).fingerprint() != first_fp:
                raise GankitError(f"--configs: {name} trains on other data ({cfg.data.source}) than {first_name} "
                                  f"({first.data.source}); compare on the same data, or pass --real SOURCE")
    else:
        for name, cfg in cfgs:
            try:
                real_probe = probe_dataset(real_config(cfg.data, real))
            except GankitError as e:
                raise GankitError(f"--real: {str(e).removeprefix('data.source:').strip()}") from None
            shape = dict(probes)[name].shape
            if real_probe.shape != shape:
                raise GankitError(f"--real: {real} gives {'x'.join(map(str, real_probe.shape))} at {name}'s data settings, "
                                  f"but {name} generates {'x'.join(map(str, shape))}")


def train_for_budget(configs: list[str], minutes: float, out: Path, overrides: list[str], real: str | None = None) -> list[Path]:
    """Train each config for the same wall-clock budget into out/runs/<name>; returns the run folders."""
    from ..training.loop import train

    cfgs = [(Path(c).stem, load_config(c, [*overrides, f"train.max_minutes={minutes}"])) for c in configs]
    names = [n for n, _ in cfgs]
    if len(set(names)) != len(names):
        raise GankitError(f"--configs: two configs share a name ({', '.join(names)}); their run folders would clash")
    check_before_training(cfgs, real)
    runs = []
    for name, cfg in cfgs:
        run = out / "runs" / name
        print(f"training {name} for {minutes:g} min -> {run}", flush=True)
        train(cfg, run, resume="auto" if run.exists() else None)  # its own progress bar (or lines) show
        runs.append(run)
    return runs


def _label(lg: LoadedGenerator, run: str) -> str:
    return Path(run).name if Path(run).is_dir() else Path(run).stem


def stored_evaluation(lg: LoadedGenerator, settings: dict[str, Any]) -> Path | None:
    """Where a run keeps compare's evaluation of one checkpoint with these settings:
    RUN/evaluations/compare-<step>-<hash of the settings>.json (None for an export or a loose checkpoint)."""
    if not RunFolder.holds_checkpoint(lg.path):
        return None
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return RunFolder.of_checkpoint(lg.path).compare_cache / f"compare-{lg.step:08d}-{key}.json"


def _read_stored(path: Path | None, settings: dict[str, Any], ckpt: Path) -> dict[str, Any] | None:
    try:
        stored = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return None
    ok = isinstance(stored, dict) and stored.get("settings") == settings and stored.get("checkpoint") == ckpt.name
    return stored["metrics"] if ok else None


def compare_runs(runs: list[str | Path], out: Path, n: int = 5000, seed: int = 0, real: str | None = None,
                 features: str | None = None, inception: str | None = None, device: str = "cpu",
                 n_real: int | None = None, metrics: list[str] | tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Evaluate every run identically; write compare.md, compare.png and compare.json into `out`.
    Each run folder keeps its evaluation (per checkpoint and settings, `stored_evaluation`), and a
    later compare with the same settings reads it instead of measuring again: runs trained in several
    sittings are measured once, and an interrupted compare loses only the run it was measuring."""
    if not runs:
        raise GankitError("compare: name at least one run folder, or --configs with --budget-minutes")
    loaded = [(str(r), load_generator(r, device)) for r in runs]
    translating = [bool(lg.spec.in_channels) for _, lg in loaded]
    if any(translating) and not all(translating):
        raise GankitError("compare: translation runs (pix2pix, cyclegan) and generation runs are measured differently; compare each kind alone")
    if real is None:
        first_run, first = loaded[0]
        for r, lg in loaded[1:]:
            if lg.data.get("fingerprint") != first.data.get("fingerprint"):
                raise GankitError(
                    f"{r}: was trained on other data than {first_run} ({data_difference(lg.data, first.data)}); "
                    f"compare runs on the same data, or pass --real SOURCE to measure all against one real set")
    if any(translating):
        return compare_translations(loaded, out, n, seed, real, features, inception, metrics)
    metrics = list(metrics or METRICS)
    if bad := [m for m in metrics if m not in METRICS]:
        raise GankitError(f"--metrics: {bad} are for translation runs; for generation runs choose from {', '.join(METRICS)}")
    kinds = {lg.data["kind"] for _, lg in loaded}
    if kinds != {"image"}:
        raise GankitError("compare: only image runs can be compared (2D toys: use gankit eval --metrics modes)")
    ds = real_data_for(loaded[0][1].cfg.data, real)
    feats, why = (features, "as asked") if features else default_features(ds)
    say(f"compare: features {feats} ({why})")
    settings = {"n": n, "n_real": min(n_real or n, len(ds)), "seed": seed, "features": feats, "real_fingerprint": ds.fingerprint(),
                "inception": str(inception) if inception else None, "metrics": list(metrics)}
    rows = []
    for r, lg in loaded:
        store = stored_evaluation(lg, settings)
        res = _read_stored(store, settings, lg.path)
        if res is not None:
            print(f"{_label(lg, r)}: evaluated before with these settings ({store}); reused", flush=True)
            x, y = generate_for_eval(lg, min(GRID, n), seed)  # the same first samples, for the grid only
        else:
            x, y = generate_for_eval(lg, n, seed)
            res = evaluate_samples(x, ds, list(metrics), feats, seed, inception, n_real=n_real, fake_labels=y)
            if store is not None:
                write_atomic(store, json.dumps({"checkpoint": lg.path.name, "step": lg.step, "settings": settings, "metrics": res}, default=str))
        g_params = sum(p.numel() for p in lg.G.parameters())
        all_params = g_params + lg.params_d
        rows.append({
            "run": _label(lg, r), "path": str(lg.path), "family": lg.cfg.model.family, "arch": lg.cfg.model.arch,
            "loss": lg.cfg.loss.name if lg.cfg.model.family == "gan" else f"elbo ({lg.cfg.vae.likelihood})",
            "steps": lg.step, "images": lg.images, "wall_minutes": lg.wall / 60,
            "images_per_s": lg.images / lg.wall if lg.wall > 0 else float("nan"),
            "params_g": g_params, "params_total": all_params, "metrics": res, "settings": settings,
            "grid": grid_image(x[:GRID].float(), nrow=8, scale=1),
        })
    out.mkdir(parents=True, exist_ok=True)
    pv = rows[0]["metrics"]["provenance"]
    note = (f"All runs: {n} generated samples each (seed {seed}) against {pv['n_real']} real images of `{ds.name}` "
            f"({pv['real_split']}); features: {feats} ({why}); classes from the dataset's classifier. "
            f"FID, KID, class KL: lower is better; the rest: higher is better. {KID_NOTE}.")
    (out / "compare.md").write_text(_markdown(rows, COLUMNS, note))
    _figure(rows, COLUMNS).save(out / "compare.png")
    (out / "compare.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "grid"} for r in rows], indent=1, default=str))
    compare_report(out, rows, _shown(rows, COLUMNS), ds.name, n, feats)
    return rows


def compare_translations(loaded: list[tuple[str, LoadedGenerator]], out: Path, n: int, seed: int, real: str | None,
                         features: str | None, inception: str | None, metrics: list[str] | tuple[str, ...] | None) -> list[dict[str, Any]]:
    """Translation runs (pix2pix, CycleGAN) side by side: each translates the same n seeded inputs of the pairs (the first
    run's, or --real's held-out pairs), scored against their targets as `gankit eval` scores one run; the figure shows
    each run's input, output and target rows for the same pairs."""
    from ..analysis.paired import evaluate_translation
    from ..artefact.translation import translation_grid
    from ..metrics.paired import PAIRED

    metrics = list(metrics or PAIRED)
    if bad := [m for m in metrics if m not in PAIRED]:
        raise GankitError(f"--metrics: {bad} are for generation runs; for translation runs choose from {', '.join(PAIRED)}")
    ds = real_data_for(loaded[0][1].cfg.data, real)
    rows = []
    for r, lg in loaded:
        res = evaluate_translation(lg.G, ds, metrics, n, seed, features, inception)
        res["provenance"].update({"checkpoint": str(lg.path), "step": lg.step})
        wall = lg.wall
        rows.append({"run": _label(lg, r), "path": str(lg.path), "family": lg.cfg.model.family, "arch": lg.cfg.model.arch,
                     "loss": lg.cfg.loss.name if lg.cfg.loss.adversarial > 0 else "L1 only", "steps": lg.step, "images": lg.images,
                     "wall_minutes": wall / 60, "images_per_s": lg.images / wall if wall > 0 else float("nan"),
                     "params_g": sum(p.numel() for p in lg.G.parameters()), "params_total": sum(p.numel() for p in lg.G.parameters()) + lg.params_d,
                     "metrics": res, "grid": grid_image(translation_grid(lg.G, ds, seed, n=6), nrow=3, scale=1)})
    pv = rows[0]["metrics"]["provenance"]
    feats = pv["features"]["name"] if isinstance(pv["features"], dict) else "none"
    note = (f"All runs: the same {pv['n_fake']} inputs of `{ds.name}` (seed {seed}; {pv['real_split']}); FID/KID features: {feats}. "
            "L1, FID, KID, cycle L1: lower is better; PSNR, SSIM: higher is better. Figure: each run's rows of input, output, target "
            "(CycleGAN: A, A to B, back to A) for the same pairs.")
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(_markdown(rows, PAIRED_COLUMNS, note))
    _figure(rows, PAIRED_COLUMNS).save(out / "compare.png")
    (out / "compare.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "grid"} for r in rows], indent=1, default=str))
    compare_report(out, rows, _shown(rows, PAIRED_COLUMNS), ds.name, n, feats,
                   caption=f"each run translates the same {pv['n_fake']} inputs of {ds.name}, scored against their targets; features {feats}")
    return rows


def _shown(rows: list[dict[str, Any]], columns) -> list[tuple[str, str, bool]]:
    """The columns some run has a value for (not the metrics left out by --metrics, or that none has)."""
    return [(c, k, lower) for c, k, lower in columns if any(math.isfinite(float(r["metrics"].get(k, float("nan")))) for r in rows)]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def _markdown(rows: list[dict[str, Any]], columns, note: str) -> str:
    cols = _shown(rows, columns)
    head = ["run", "family", "loss", *[c for c, _, _ in cols], "train min", "steps", "img/s", "G params", "all params"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m = r["metrics"]
        cells = [r["run"], r["family"], r["loss"], *[_fmt(m.get(k, float("nan"))) for _, k, _ in cols],
                 f"{r['wall_minutes']:.1f}", str(r["steps"]), _fmt(r["images_per_s"]), f"{r['params_g'] / 1e6:.2f}M",
                 f"{r['params_total'] / 1e6:.2f}M"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", note]
    return "\n".join(lines) + "\n"


def _figure(rows: list[dict[str, Any]], columns) -> Image.Image:
    """Sample grids side by side on top, one bar chart per metric below."""
    pad, title = 12, 18
    grids = [r["grid"].convert("RGB") for r in rows]
    gw = max(g.width for g in grids)
    gh = max(g.height for g in grids)
    cols = _shown(rows, columns)
    bar_h, bar_w = 22 * len(rows) + title + pad, 260
    per_row = max(1, (len(rows) * (gw + pad) + pad) // (bar_w + pad))
    n_bar_rows = math.ceil(len(cols) / per_row)
    width = max(len(rows) * (gw + pad) + pad, per_row * (bar_w + pad) + pad)
    img = Image.new("RGB", (width, title + gh + 2 * pad + n_bar_rows * bar_h), "white")
    draw = ImageDraw.Draw(img)
    palette = PALETTE
    for i, (r, g) in enumerate(zip(rows, grids)):
        x0 = pad + i * (gw + pad)
        draw.text((x0, 2), r["run"], fill=palette[i % len(palette)])
        img.paste(g, (x0, title))
    y_top = title + gh + pad
    for j, (c, k, lower) in enumerate(cols):
        bx, by = pad + (j % per_row) * (bar_w + pad), y_top + (j // per_row) * bar_h
        vals = [float(r["metrics"].get(k, float("nan"))) for r in rows]
        finite = [v for v in vals if math.isfinite(v)]
        top = max(max(finite), 1e-12) if finite else 1.0
        draw.text((bx, by), f"{c} ({'lower' if lower else 'higher'} is better)", fill="black")
        for i, v in enumerate(vals):
            y = by + title + i * 22
            w = int((bar_w - 70) * max(v, 0) / top) if math.isfinite(v) else 0
            draw.rectangle([bx, y, bx + max(w, 1), y + 16], fill=palette[i % len(palette)])
            draw.text((bx + w + 4, y + 2), _fmt(v), fill="black")
    return img
