"""`gankit report`: a run as one self-contained HTML file (report.html).

Everything is inline (curves as SVG, grids as data URIs, a few lines of script for the sliders and
the 2D view): the file opens offline, makes no network request, and stays a few MB however long
the run (series are thinned to MAX_POINTS, grids to MAX_GRIDS within IMAGE_BUDGET bytes). It is
written at every checkpoint and at the end of training; `gankit serve RUN` serves it live.
Missing or damaged files become notes in the report, never a crash.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import time
from pathlib import Path
from typing import Any

from ..jsonl import read_jsonl
from ..paths import write_atomic
from ..runfolder import RunFolder, grid_step

MAX_POINTS = 400  # per curve
MAX_GRIDS = 40
MAX_SNAPSHOTS = 60
IMAGE_BUDGET = 3 << 20  # bytes of grid images in one report
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

# curves, in this order: title -> metrics.jsonl keys; other numeric keys get a chart of their own
CURVES = [
    ("Losses", ["loss_d", "loss_g"]),
    ("VAE: loss and ELBO terms (nats per image)", ["loss", "recon", "kl", "elbo"]),
    ("D's mean output on real and generated data", ["d_real", "d_fake"]),
    ("D accuracy (real > 0, generated < 0)", ["d_acc"]),
    ("Gradient norms", ["grad_norm_d", "grad_norm_g", "grad_norm_enc"]),
    ("D's overfitting signal r_t (and augmentation p)", ["r_t", "augment_p"]),
    ("Diversity of G's samples", ["diversity"]),
    ("Learning rate", ["lr_g"]),
    ("Images per second", ["images_per_s"]),
    ("Peak memory (MB)", ["peak_rss_mb"]),
    ("VAE decoder sigma", ["sigma"]),
]
NOT_CURVES = {"step", "images", "seconds", "nonfinite", "dataset_size", "event"}
# metrics of evaluations during training (`training.during`), logged as eval_<name>
EVAL_KEYS = {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "is_classifier", "is_classifier_std",
             "confident_frac", "label_accuracy", "modes", "hq", "kl", "stacked_modes", "stacked_kl", "l1", "psnr", "ssim", "cycle"}


def _evaluated(key: str) -> str | None:
    """The metric an eval_<name> key of metrics.jsonl holds (None for any other key)."""
    return key[5:] if key.startswith("eval_") and key[5:] in EVAL_KEYS else None


# ---- reading the run's files --------------------------------------------------------------------

def run_info(run: Path, notes: list[str]) -> dict[str, Any]:
    """What training wrote about itself (run.json); else what the newest checkpoint holds."""
    p = RunFolder(run).info
    if p.is_file():
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            notes.append("run.json: not readable; the data and network details come from the newest checkpoint")
    try:
        from ..artefact.loader import trainable_count
        from ..checkpoint import latest_valid

        found = latest_valid(RunFolder(run).checkpoints)
    except Exception:  # noqa: BLE001 - the report must not fail on a bad checkpoint
        found = None
    if found is None:
        return {}
    state = found[1]
    cfg = state.get("config", {})
    return {"data": state.get("data", {}), "family": cfg.get("model", {}).get("family"), "arch": cfg.get("model", {}).get("arch"),
            "params_g": trainable_count(state["G"]), "params_d": trainable_count(state["D"]), "gankit": state.get("version")}


# ---- pieces of HTML -------------------------------------------------------------------------------

def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt(v: Any) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return "n/a"
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10000:
        return f"{v:,}"
    return str(v)


def thin(points: list[tuple[float, float]], n: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most n points, evenly spaced by index, the last one kept; in each bucket the point
    farthest from the bucket's mean is kept too, so spikes survive thinning."""
    if len(points) <= n:
        return points
    out = []
    per = len(points) / (n // 2)
    for b in range(n // 2):
        chunk = points[int(b * per): int((b + 1) * per)] or points[-1:]
        mean = sum(y for _, y in chunk) / len(chunk)
        far = max(chunk, key=lambda p: abs(p[1] - mean))
        first = chunk[0]
        out.extend(sorted({first, far}, key=lambda p: p[0]))
    if out[-1] != points[-1]:
        out.append(points[-1])
    return out


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def svg_chart(title: str, series: dict[str, list[tuple[float, float]]], markers: list[dict[str, Any]],
              width: int = 520, height: int = 230) -> str:
    """A line chart as inline SVG: curves, axes with ticks, a legend, and vertical markers
    (health findings, rollbacks) whose labels show on hover."""
    series = {k: thin([(x, y) for x, y in v if math.isfinite(x) and math.isfinite(y)]) for k, v in series.items()}
    series = {k: v for k, v in series.items() if v}
    left, right, top, bottom = 58, 12, 24, 34
    xs = [x for v in series.values() for x, _ in v]
    ys = [y for v in series.values() for _, y in v]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5 * (abs(y0) or 1), y1 + 0.5 * (abs(y1) or 1)
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    w, h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * h

    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{esc(title)}">',
             f'<text x="{left}" y="15" class="t">{esc(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fff" stroke="#ccc"/>']
    for t in _ticks(y0, y1):
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{py(t) + 4:.1f}" text-anchor="end" class="k">{esc(fmt(float(f"{t:.6g}")))}</text>')
    for t in _ticks(x0, x1):
        parts.append(f'<text x="{px(t):.1f}" y="{top + h + 14}" text-anchor="middle" class="k">{esc(fmt(int(t)) if t == int(t) else fmt(t))}</text>')
    parts.append(f'<text x="{left + w / 2}" y="{height - 4}" text-anchor="middle" class="k">step</text>')
    for m in markers:
        if x0 <= m["step"] <= x1:
            colour = {"error": "#d62728", "warning": "#ff9900", "rollback": "#7b3fa0"}.get(m["kind"], "#999")
            dash = ' stroke-dasharray="4 3"' if m["kind"] == "rollback" else ""
            parts.append(f'<line class="marker {esc(m["kind"])}" x1="{px(m["step"]):.1f}" x2="{px(m["step"]):.1f}" y1="{top}" y2="{top + h}" '
                         f'stroke="{colour}" stroke-width="1.5"{dash}><title>{esc(m["label"])}</title></line>')
    for i, (name, pts) in enumerate(series.items()):
        c = COLOURS[i % len(COLOURS)]
        d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline class="series" data-name="{esc(name)}" fill="none" stroke="{c}" stroke-width="1.4" points="{d}"/>')
        parts.append(f'<text x="{left + 8 + 110 * i}" y="{top + 13}" class="legend" fill="{c}">{esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def table(rows: list[tuple[Any, ...]], head: tuple[str, ...] | None = None) -> str:
    out = ["<table>"]
    if head:
        out.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{esc(fmt(c))}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return "".join(out)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def _image_uris(paths: list[Path], notes: list[str]) -> list[tuple[int, str]]:
    """(step, data URI) for up to MAX_GRIDS grids spread over the run (the last always kept),
    re-encoded as JPEG when PNGs would pass IMAGE_BUDGET."""
    if len(paths) > MAX_GRIDS:
        idx = sorted({round(i * (len(paths) - 1) / (MAX_GRIDS - 1)) for i in range(MAX_GRIDS)})
        paths = [paths[i] for i in idx]
    blobs = []
    for p in paths:
        try:
            blobs.append((p, p.read_bytes()))
        except OSError:
            notes.append(f"samples/{p.name}: cannot be read, left out")
    total = sum(len(b) for _, b in blobs)
    out = []
    if total > IMAGE_BUDGET:
        from PIL import Image

        quality = 85
        budget_each = IMAGE_BUDGET / max(len(blobs), 1)
        for p, b in blobs:
            try:
                im = Image.open(io.BytesIO(b)).convert("RGB")
                while True:
                    buf = io.BytesIO()
                    im.save(buf, "JPEG", quality=quality)
                    if buf.tell() <= budget_each or min(im.size) < 96:
                        break
                    im = im.resize((im.width * 3 // 4, im.height * 3 // 4))
                out.append((grid_step(p), data_uri(buf.getvalue(), "image/jpeg")))
            except Exception:  # noqa: BLE001 - a damaged PNG is left out
                notes.append(f"samples/{p.name}: not a readable image, left out")
    else:
        out = [(grid_step(p), data_uri(b, "image/png")) for p, b in blobs]
    return out


# ---- the report -------------------------------------------------------------------------------


def _markers(findings: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for f in findings:
        out.append({"step": f.get("step", 0), "kind": f.get("severity", "warning"),
                    "label": f"step {f.get('step')}: [{f.get('severity')}] {f.get('name')}: {f.get('action') or ''}"})
    for r in records:
        if r.get("event") == "rollback":
            out.append({"step": r.get("step", 0), "kind": "rollback", "label": f"step {r.get('step')}: rolled back ({r.get('reason')}); {r.get('remedy')}"})
    return out


def _curves(records: list[dict[str, Any]], markers: list[dict[str, Any]]) -> list[str]:
    train_recs = [r for r in records if "images_per_s" in r]
    eval_recs = [r for r in records if "images_per_s" not in r and "event" not in r and any(_evaluated(k) for k in r)]

    def series(recs: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
        return [(float(r["step"]), float(r[key])) for r in recs if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)
                and "step" in r]

    charts, used = [], set(NOT_CURVES)
    for title, keys in CURVES:
        s = {k: series(train_recs, k) for k in keys}
        s = {k: v for k, v in s.items() if v}
        used.update(keys)
        if s:
            charts.append(svg_chart(title, s, markers))
    others = sorted({k for r in train_recs for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)} - used)
    for k in others:
        if s := series(train_recs, k):
            charts.append(svg_chart(k, {k: s}, markers))
    ev_keys = sorted({k for r in eval_recs for k, v in r.items() if _evaluated(k) and isinstance(v, (int, float))})
    for k in ev_keys:
        charts.append(svg_chart(f"During training: {_evaluated(k)}", {_evaluated(k): series(eval_recs, k)}, markers))
    return charts


def build_report(run: Path, live: bool = False) -> str:
    """The report of run folder `run` as one HTML string."""
    from .health import doctor

    run = Path(run)
    folder = RunFolder(run)
    notes: list[str] = []
    records = read_jsonl(folder.metrics, notes)
    if not folder.metrics.is_file():
        notes.append("metrics.jsonl: missing (no interval logged yet?)")
    findings = read_jsonl(folder.health, notes)
    info = run_info(run, notes)
    config_text = folder.config.read_text() if folder.config.is_file() else ""
    if not config_text:
        notes.append("config.yaml: missing")
    elif not info.get("steps"):
        m = re.search(r"^train:\n(?:  .*\n)*?  steps: (\d+)", config_text, re.M)
        info["steps"] = int(m.group(1)) if m else None
    from ..runlock import is_held

    running = is_held(run)
    train_recs = [r for r in records if "images_per_s" in r]
    last = train_recs[-1] if train_recs else {}
    data = info.get("data", {})
    title = f"gankit report: {run.resolve().name}"

    body = [f"<h1>{esc(title)}</h1>"]
    done = bool(last) and int(last.get("step", 0)) >= int(info.get("steps") or 10**18)
    status = "finished" if done else "training" if running else f"stopped at step {last.get('step', 0)} (continue with --resume auto)"
    body.append(f'<p class="muted">{esc(status)}; report written {esc(time.strftime("%Y-%m-%d %H:%M:%S"))}'
                + (' · <span id="live">live view: refreshes as the run grows</span>' if live else "")
                + (' · <a href="sampler/">sampler page</a>' if live and (folder.sampler / "index.html").is_file() else "") + "</p>")
    shape = "x".join(map(str, data.get("shape", []))) or "?"
    summary = [
        ("data", f"{data.get('name', '?')}: {fmt(data.get('size', '?'))} {'2D points' if data.get('kind') == 'points' else 'images'}, shape {shape}"
         + (f", {data.get('num_classes')} classes" if data.get("num_classes") else "")),
        ("data fingerprint", data.get("fingerprint", "?")),
        ("model", f"{info.get('family', '?')} {info.get('arch', '?')}: G {fmt(info.get('params_g', 0) / 1e6)}M, "
         f"{'encoder' if info.get('family') == 'vae' else 'D'} {fmt(info.get('params_d', 0) / 1e6)}M parameters"),
        ("steps", f"{fmt(last.get('step', 0))} logged" + (f" (train.steps {fmt(info['steps'])})" if info.get("steps") else "")),
        ("images seen", fmt(last.get("images", 0))),
        ("training time", f"{last.get('seconds', 0) / 60:.1f} min" if last else "-"),
        ("processes", info.get("world_size", 1)),
        ("gankit", info.get("gankit", "?")),
    ]
    body.append(table(summary))
    if notes:
        body.append("".join(f'<div class="note">{esc(n)}</div>' for n in notes))

    # health
    body.append("<h2>Health</h2>")
    try:
        text, _ = doctor(run)
        verdict = text.strip().splitlines()[-1]
        body.append(f"<p><b>{esc(verdict)}</b> (from <code>gankit doctor</code>)</p>")
    except Exception as e:  # noqa: BLE001 - a report with notes beats no report
        text = ""
        body.append(f'<div class="note">gankit doctor could not judge this run: {esc(e)}</div>')
    for f in findings:
        body.append(f'<div class="finding {esc(f.get("severity", ""))}"><b>[{esc(f.get("severity"))}] {esc(f.get("name"))}</b> at step '
                    f'{esc(f.get("step"))}: {esc(f.get("explanation", ""))}<br><span class="muted">evidence: '
                    f'{esc(json.dumps(f.get("evidence", {})))}; done: {esc(f.get("action") or "-")}</span></div>')
    rollbacks = [r for r in records if r.get("event") == "rollback"]
    for r in rollbacks:
        body.append(f'<div class="finding error"><b>rollback</b> at step {esc(r.get("step"))}: {esc(r.get("reason"))}; {esc(r.get("remedy"))}</div>')
    if text:
        body.append(f"<details><summary>gankit doctor's full text</summary><pre>{esc(text)}</pre></details>")

    # curves
    markers = _markers(findings, records)
    charts = _curves(records, markers)
    body.append("<h2>Curves</h2>")
    if charts:
        body.append('<p class="muted">vertical lines: health findings (orange: warning, red: error) and rollbacks (dashed); hover for what.</p>')
        body.append('<div class="charts">' + "".join(charts) + "</div>")
    else:
        body.append('<p class="muted">no metrics logged yet.</p>')

    # grids
    grids = folder.grids()
    body.append("<h2>Samples over training</h2>")
    if grids:
        uris = _image_uris(grids, notes)
        k = len(uris) - 1
        real = folder.real_grid
        real_html = (f'<figure><img id="real-img" alt="real data" src="{data_uri(real.read_bytes(), "image/png")}">'
                     f'<figcaption>real data</figcaption></figure>') if real.is_file() else '<p class="muted">(no real-data grid in this run)</p>'
        body.append(f'<p>fixed latents, from G_ema; <input type="range" id="grid-slider" min="0" max="{k}" value="{k}"> '
                    f'<span id="grid-step">step {uris[-1][0]}</span> ({len(uris)} of {len(grids)} grids)</p>'
                    f'<div class="grids"><figure><img id="grid-img" alt="generated samples" src="{uris[-1][1]}"><figcaption>generated</figcaption></figure>'
                    f'{real_html}</div>')
        body.append(f'<script type="application/json" id="grid-data">{json.dumps(uris)}</script>')
    else:
        body.append('<p class="muted">no grids yet.</p>')
    recons = folder.reconstruction_grids()
    if recons:
        body.append(f'<h2>VAE reconstructions</h2><p class="muted">rows: real images, then their reconstructions (step {grid_step(recons[-1])})</p>'
                    f'<img alt="reconstructions" src="{data_uri(recons[-1].read_bytes(), "image/png")}">')

    # directions in the latent space (written at each checkpoint: duties.directions, or gankit directions)
    strips = folder.strips()
    if strips:
        body.append("<h2>Directions in the latent space</h2><p class=\"muted\">each group of rows is one direction, strongest first: "
                    "3 samples (one per row) moved from -3 to +3 standard deviations of the prior along it, from G_ema at the newest "
                    f"checkpoint. Apply one with <code>gankit edit {esc(run)} --seed S --direction K --amount A</code>; "
                    "move them on your own images in the sampler page.</p><div class=\"grids\">")
        for path in strips:
            method = path.stem.removeprefix("strips_")
            body.append(f'<figure><img alt="{esc(method)} directions" src="{data_uri(path.read_bytes(), "image/png")}">'
                        f'<figcaption>{esc(method)}</figcaption></figure>')
        body.append("</div>")

    # the 2D view
    snaps = read_jsonl(folder.snapshots, notes)
    if snaps:
        if len(snaps) > MAX_SNAPSHOTS:
            idx = sorted({round(i * (len(snaps) - 1) / (MAX_SNAPSHOTS - 1)) for i in range(MAX_SNAPSHOTS)})
            snaps = [snaps[i] for i in idx]
        k = len(snaps) - 1
        body.append('<section id="game"><h2>Inside the game (2D)</h2>'
                    '<p class="muted legend"><span style="color:#1a9850">&#9679; real</span><span style="color:#7b3294">&#9679; generated</span>'
                    "<span>background: D's output (green: judged real, purple: judged generated)</span><span>arrows: where G's gradient moves "
                    "generated points</span></p>"
                    f'<p><input type="range" id="snap-slider" min="0" max="{k}" value="{k}"> <span id="snap-step"></span> ({len(snaps)} snapshots)</p>'
                    '<canvas id="field" width="520" height="520"></canvas>'
                    f'<script type="application/json" id="snapshot-data">{json.dumps(snaps)}</script></section>')

    # evaluation
    body.append("<h2>Evaluation</h2>")
    ev = None
    try:
        ev = folder.latest_evaluation()
    except ValueError as e:
        body.append(f'<div class="note">{esc(e)}</div>')
    if ev:
        rows = [(k, v) for k, v in ev.items() if k not in ("provenance", "class_hist", "warnings") and not isinstance(v, (dict, list))]
        body.append("<p>the latest <code>gankit eval</code></p>" + table(rows, ("metric", "value")))
        prov = ev.get("provenance", {})
        body.append("<details><summary>provenance</summary>" + table([(k, json.dumps(v) if isinstance(v, (dict, list)) else v)
                                                                         for k, v in prov.items()]) + "</details>")
        for w in ev.get("warnings", []):
            body.append(f'<div class="note">{esc(w)}</div>')
    elif ev is None:
        body.append(f'<p class="muted">none yet: <code>gankit eval {esc(run)}</code></p>')

    body.append(f"<h2>Configuration</h2><pre>{esc(config_text or '(missing)')}</pre>")
    return page(title, "".join(body), live=live)


def _asset(name: str) -> str:
    from importlib.resources import files

    return (files("gankit") / "web" / name).read_text()


def page(title: str, body: str, live: bool = False, script: bool = True) -> str:
    """A whole page: the style and (with `script`) web/report.js inline; `live` turns on the reload."""
    js = f"<script>{_asset('report.js')}</script>" if script else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<link rel="icon" href="data:,"><meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{_asset('report.css')}</style></head><body data-live=\"{1 if live else 0}\">{body}{js}</body></html>\n")


def write_report(run: Path) -> Path:
    """report.html in the run folder (written whole, then renamed over the old one)."""
    return write_atomic(RunFolder(run).report, build_report(run))


def live_stamp(run: Path) -> str:
    """Changes whenever a file the report reads changes."""
    parts = []
    for name in RunFolder.WATCHED:
        p = run / name
        if p.is_file():
            st = p.stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    samples = RunFolder(run).samples
    if samples.is_dir():
        parts.append(f"samples:{len(list(samples.glob('*.png')))}")
    return "|".join(parts)


def compare_report(out: Path, rows: list[dict[str, Any]], columns: list[tuple[str, str, str]], real: str, n: int, feats: str,
                   caption: str | None = None) -> Path:
    """compare.html beside compare.md: the same table, the figure, and each run's grid."""
    head = ("run", "family", "loss", *[c for c, _, _ in columns], "train min", "steps", "img/s", "G params")
    body_rows = [(r["run"], r["family"], r["loss"], *[r["metrics"].get(k, float("nan")) for _, k, _ in columns],
                  round(r["wall_minutes"], 1), r["steps"], r["images_per_s"], f"{r['params_g'] / 1e6:.2f}M") for r in rows]
    body = [f"<h1>gankit compare: {len(rows)} run(s)</h1>",
            f'<p class="muted">{esc(caption or f"each run: {n} generated samples against real {real}; features {feats}")}</p>', table(body_rows, head)]
    fig = out / "compare.png"
    if fig.is_file():
        body.append(f'<h2>Side by side</h2><img alt="comparison" src="{data_uri(fig.read_bytes(), "image/png")}" style="max-width:100%">')
    grids = []
    for r in rows:
        if r.get("grid") is not None:
            buf = io.BytesIO()
            r["grid"].save(buf, "PNG")
            grids.append(f'<figure><img alt="{esc(r["run"])}" src="{data_uri(buf.getvalue(), "image/png")}"><figcaption>{esc(r["run"])}</figcaption></figure>')
    if grids:
        body.append('<h2>Samples (the same seed for every run)</h2><div class="grids">' + "".join(grids) + "</div>")
    return write_atomic(out / "compare.html", page("gankit compare", "".join(body), script=False))
