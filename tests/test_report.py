"""The run report: its content follows the run's files, damaged lines are notes, the size stays
bounded; training writes it, snapshots of a 2D game do not change training; TensorBoard; the live server."""
import html.parser
import json
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import dump_yaml, make_config
from gankit.training.loop import train
from gankit.analysis.report import MAX_POINTS, build_report, live_stamp, write_report

from .conftest import tiny_overrides


class Parsed(html.parser.HTMLParser):
    """Tags and ids of an HTML page; fails the test on an unclosed <svg>, <table> or <script>."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.ids, self.titles, self.open = [], {}, [], []
        self.feed(text)
        self.close()
        assert not [t for t in self.open if t in ("svg", "table", "script", "details", "figure")], self.open

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids[a["id"]] = a
        if tag in ("svg", "table", "script", "details", "figure"):
            self.open.append(tag)
        if tag == "svg":
            self.titles.append(a.get("aria-label"))

    def handle_endtag(self, tag):
        if self.open and self.open[-1] == tag:
            self.open.pop()

    def count(self, tag, **attrs):
        return sum(1 for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items()))


def synthetic_run(folder, steps=1000, every=100, grids=5, findings=True, bad_line=False, res=16):
    """A run folder written the way training writes one, with known numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(dump_yaml(make_config({}, [f"train.steps={steps}", f"train.log_every={every}"])))
    lines = []
    for s in range(every, steps + 1, every):
        lines.append(json.dumps({"step": s, "images": s * 64, "loss_d": 1.0 + s / steps, "loss_g": 2.0 - s / steps, "d_real": 0.5,
                                 "d_fake": -0.5, "d_acc": 0.7, "grad_norm_d": 3.0, "grad_norm_g": 1.0, "seconds": s / 10.0,
                                 "images_per_s": 640.0, "lr_g": 2e-4, "nonfinite": 0, "peak_rss_mb": 400.0, "diversity": 0.9,
                                 "custom_stat": s % 7}))
    lines.insert(len(lines) // 2, json.dumps({"step": steps // 2, "images": 0, "eval_fid": 12.5, "eval_kid": 0.01,  # as training.during writes it
                                                          "eval_features": "classifier", "eval_n": 1000}))
    text = "\n".join(lines) + "\n"
    if bad_line:
        text += '{"step": 99999, "loss_d": 1.'  # a write cut short by a crash
    (folder / "metrics.jsonl").write_text(text)
    if findings:
        (folder / "health.jsonl").write_text(json.dumps({"name": "d_wins", "severity": "warning", "step": 400, "since": 300,
                                                         "explanation": "D separates everything", "evidence": {"d_acc": 0.99},
                                                         "suggestion": {"loss.r1": 1.0}, "action": "warned"}) + "\n")
    (folder / "samples").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(grids):
        Image.fromarray(rng.integers(0, 255, (8 * res, 8 * res, 3), dtype=np.uint8)).save(folder / "samples" / f"step_{(k + 1) * 100:06d}.png")
    Image.fromarray(np.zeros((8 * res, 8 * res, 3), np.uint8)).save(folder / "samples" / "real.png")
    (folder / "run.json").write_text(json.dumps({"data": {"name": "digits", "kind": "image", "shape": [3, res, res], "size": 1797,
                                                          "fingerprint": "abc123"}, "family": "gan", "arch": "dcgan",
                                                 "params_g": 12345, "params_d": 6789, "steps": steps, "world_size": 1}))
    (folder / "eval.json").write_text(json.dumps({"evaluations": [{"fid": 9.5, "precision": 0.8, "provenance": {"features": "classifier",
                                                                                                               "n_fake": 2000}}]}))
    return folder


def test_report_shows_every_curve_grid_table_and_finding_of_the_run(tmp_path):
    run = synthetic_run(tmp_path / "run")
    text = build_report(run)
    doc = Parsed(text)
    titles = set(doc.titles)
    for t in ("Losses", "D's mean output on real and generated data", "D accuracy (real > 0, generated < 0)", "Gradient norms",
              "Diversity of G's samples", "Learning rate", "Images per second", "Peak memory (MB)", "custom_stat",
              "During training: fid", "During training: kid"):
        assert t in titles, t
    assert not any("r_t" in (t or "") for t in titles)  # nothing logged, no chart
    # the finding, on each of the 9 training charts (the eval charts span step 500 alone)
    assert doc.count("line", **{"class": "marker warning"}) == 9
    assert "D separates everything" in text and "[warning] d_wins" in text
    assert doc.ids["grid-slider"]["max"] == "4" and doc.ids["grid-slider"]["value"] == "4"
    grids = json.loads(text.split('id="grid-data">')[1].split("</script>")[0])
    assert [g[0] for g in grids] == [100, 200, 300, 400, 500] and all(g[1].startswith("data:image/png;base64,") for g in grids)
    assert doc.ids["real-img"]["src"].startswith("data:image/png;base64,")
    assert "<td>fid</td><td>9.5</td>" in text and "n_fake" in text  # the eval table and its provenance
    assert "verdict:" in text and "train:" in text  # doctor's verdict; the resolved config
    assert "abc123" in text and "digits" in text and "finished" in text
    assert "http" not in text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from anywhere


def test_a_damaged_metrics_line_is_a_note_and_missing_files_are_notes(tmp_path):
    run = synthetic_run(tmp_path / "run", bad_line=True, findings=False)
    text = build_report(run)
    Parsed(text)
    assert "metrics.jsonl: 1 line(s) not readable as JSON records, left out: line 12 (the last line: a write cut short?)" in text
    assert "Losses" in text
    (run / "metrics.jsonl").unlink()
    (run / "config.yaml").unlink()
    text = build_report(run)
    Parsed(text)
    assert "metrics.jsonl: missing" in text and "config.yaml: missing" in text and "no metrics logged yet" in text


def test_report_of_a_long_run_stays_small(tmp_path):
    run = synthetic_run(tmp_path / "run", steps=100_000, every=10, grids=150, res=32)  # 10,000 lines, 150 noise grids (~20 MB)
    assert sum(p.stat().st_size for p in (run / "samples").iterdir()) > 15 << 20
    text = build_report(run)
    Parsed(text)
    assert len(text.encode()) < 5 << 20
    polylines = [seg.split('"')[0] for seg in text.split('points="')[1:]]
    assert max(len(p.split()) for p in polylines) <= MAX_POINTS + 1
    grids = json.loads(text.split('id="grid-data">')[1].split("</script>")[0])
    assert len(grids) == 40 and grids[-1][0] == 15000 and grids[0][1].startswith("data:image/jpeg")


def test_training_writes_the_report_and_what_it_shows(tmp_path):
    out = tmp_path / "run"
    train(make_config({}, tiny_overrides(**{"model.conditional": True})), out, quiet=True)
    doc = Parsed((out / "report.html").read_text())
    assert "Losses" in doc.titles and doc.ids["grid-slider"]["max"] == "1"  # grids at steps 3 and 6
    assert (out / "samples" / "real.png").is_file() and doc.ids["real-img"]["src"].startswith("data:image/png")
    info = json.loads((out / "run.json").read_text())
    assert info["arch"] == "dcgan" and info["data"]["name"] == "digits" and info["params_g"] > 0
    vae = tmp_path / "vae"
    train(make_config({}, tiny_overrides(**{"model.family": "vae"})), vae, quiet=True)
    text = (vae / "report.html").read_text()
    assert "VAE reconstructions" in text and "VAE: loss and ELBO terms (nats per image)" in text
    assert sorted(p.name for p in (vae / "samples").glob("recon_*.png")) == ["recon_000003.png", "recon_000006.png"]


def _points_run(out, **extra):
    opts = {"data.source": "ring8", "model.arch": "mlp", "model.width": 16, "model.z_dim": 4, "train.steps": 12,
            "train.sample_every": 6, "train.checkpoint_every": 6, **extra}
    return train(make_config({}, [o for o in tiny_overrides(**opts) if "resolution" not in o]), out, quiet=True)


def test_2d_snapshots_show_the_game_and_do_not_change_training(tmp_path):
    watched = _points_run(tmp_path / "a", **{"train.snapshot_every": 1})
    plain = _points_run(tmp_path / "b", **{"train.snapshot_every": 1000})
    for k, v in watched.G.state_dict().items():  # watching every step changes nothing of the training
        assert torch.equal(v, plain.G.state_dict()[k]), k
    for k, v in watched.D.state_dict().items():
        assert torch.equal(v, plain.D.state_dict()[k]), k
    snaps = [json.loads(x) for x in (tmp_path / "a" / "snapshots.jsonl").read_text().splitlines()]
    assert [s["step"] for s in snaps] == list(range(1, 13))
    s = snaps[-1]
    assert len(s["real"]) == len(s["fake"]) == 240 and len(s["grad"]) == 80 and len(s["field"]) == 40
    assert np.isfinite(np.array(s["field"])).all() and np.abs(np.array(s["grad"])).sum() > 0
    # the field is D's output: recompute one cell
    b = s["bounds"]
    x = torch.tensor([[b[0], b[2]]])
    watched.D.eval()
    with torch.no_grad():
        assert float(watched.D(x, None)) == pytest.approx(s["field"][0][0], abs=1e-4)
    assert [json.loads(x)["step"] for x in (tmp_path / "b" / "snapshots.jsonl").read_text().splitlines()] == [12]  # the last step
    text = (tmp_path / "a" / "report.html").read_text()
    doc = Parsed(text)
    assert "Inside the game (2D)" in text and doc.ids["snap-slider"]["max"] == "11"


def test_tensorboard_gets_the_scalars_and_grids(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    train(make_config({}, tiny_overrides(**{"log.tensorboard": True})), out, quiet=True)
    ea = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    ea.Reload()
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    loss_d = ea.Scalars("train/loss_d")
    assert [e.step for e in loss_d] == [r["step"] for r in recs]
    assert [e.value for e in loss_d] == pytest.approx([r["loss_d"] for r in recs], rel=1e-6)  # stored as float32
    assert [e.step for e in ea.Images("samples")] == [3, 6]


def test_live_server_serves_the_report_and_its_stamp_moves(tmp_path):
    from gankit.web.server import run_server

    run = synthetic_run(tmp_path / "run")
    server = run_server(run)
    server.start()
    try:
        assert server.server_address[0] == "127.0.0.1"
        page = urllib.request.urlopen(server.url).read().decode()
        assert "live view: refreshes as the run grows" in page and "live.json" in page
        stamp = json.loads(urllib.request.urlopen(server.url + "live.json").read())["stamp"]
        assert stamp == live_stamp(run)
        with open(run / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": 1100, "images": 1, "loss_d": 5.0, "loss_g": 5.0, "seconds": 1.0, "images_per_s": 1.0}) + "\n")
        assert json.loads(urllib.request.urlopen(server.url + "live.json").read())["stamp"] != stamp
        assert "1100" in urllib.request.urlopen(server.url).read().decode()  # rebuilt, not cached
    finally:
        server.shutdown()
        server.server_close()


def test_report_command(tmp_path):
    from .test_export import _cli

    run = synthetic_run(tmp_path / "run")
    r = _cli("report", run)
    assert r.returncode == 0 and (run / "report.html").is_file() and "wrote" in r.stdout
    r = _cli("report", tmp_path / "nothing")
    assert r.returncode == 2 and "not a run folder" in r.stderr
    assert write_report(run).name == "report.html"


def test_each_curve_legend_is_drawn_in_its_series_colour(tmp_path):
    """The legend's labels keep their series' colour: no stylesheet rule paints them over (the axis
    labels' grey `svg .k { fill }` did, so loss_d could not be told from loss_g)."""
    import re
    from importlib.resources import files
    text = build_report(synthetic_run(tmp_path / "run"))
    css = files("gankit.web").joinpath("report.css").read_text() + "".join(re.findall(r"<style>(.*?)</style>", text, re.S))
    strokes = re.findall(r'<polyline class="series" data-name="([^"]+)" fill="none" stroke="([^"]+)"', text)
    labels = re.findall(r'<text [^>]*class="([^"]+)" fill="([^"]+)">([^<]+)</text>', text)
    assert strokes and labels
    by_name = {n: c for n, c in strokes}
    for cls, fill, name in labels:
        if name in by_name:
            assert fill == by_name[name]
            painted = [r for r in re.findall(r"([^{}]*)\{([^}]*)\}", css) if re.search(rf"\.{cls}\b", r[0]) and "fill" in r[1]]
            assert not painted, painted
    assert len({c for _, c, _ in labels}) >= 2
