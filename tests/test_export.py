"""Export: safetensors + generator.json reproduce G_ema exactly; ONNX equals PyTorch; tampering is
refused; sample, eval and gankit.load read export folders; the server keeps to its folder."""
import http.client
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import gankit
from gankit.config import make_config
from gankit.errors import CheckpointError, GankitError
from gankit.artefact.export import export
from gankit.training.loop import train
from gankit.artefact.loader import load_generator
from gankit.artefact.sampling import generate
from gankit.web.server import make_server, resolve_inside

from .conftest import ORT_WEB, need, tiny_overrides

# one run per architecture and family, each a few steps: images conditional and not, 2D points, a VAE
RUNS = {
    "dcgan_cond_sn": {"model.conditional": True, "model.sn_g": True},
    "resnet": {"model.arch": "resnet", "data.resolution": 32},
    "mlp_points": {"data.source": "ring8", "data.resolution": None, "model.arch": "mlp", "model.width": 16, "model.z_dim": 4},
    "vae": {"model.family": "vae"},
    "r3gan_cond": {"model.arch": "r3gan", "model.conditional": True, "loss.name": "rpgan", "loss.r1": 0.1, "loss.r2": 0.1},
    "stylegan2_cond": {"model.arch": "stylegan2", "model.conditional": True, "model.width": 4, "model.style_mixing": 0.5},
    "fastgan": {"model.arch": "fastgan", "model.width": 4, "model.sn_g": True, "data.channels": 3},
}


def _overrides(extra):
    return [o for o in tiny_overrides(**{"train.steps": 3, "train.checkpoint_every": 3, **extra}) if not o.endswith("=None")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANKIT_CACHE", str(root / "cache"))
        for name, extra in RUNS.items():
            train(make_config({}, _overrides(extra)), root / name)
    return root


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "gankit", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize("name", list(RUNS))
def test_safetensors_export_reproduces_the_runs_samples_exactly(runs, tmp_path, name):
    out = export(runs / name, "safetensors", tmp_path / "x")
    meta = json.loads((out / "generator.json").read_text())
    assert {"arch", "z_dim", "latent", "class_names", "output", "data", "step", "gankit", "weights"} <= set(meta)
    assert meta["step"] == 3 and meta["data"]["fingerprint"]
    assert sorted(p.name for p in out.iterdir()) == ["generator.json", "generator.safetensors"]
    lg = load_generator(runs / name)
    ref, _ = generate(lg.G, 7, lg.spec.z_dim, lg.spec.num_classes, torch.device("cpu"), seed=5)
    g = gankit.load(out)
    assert g.step == 3 and g.z_dim == lg.spec.z_dim and g.num_classes == lg.spec.num_classes
    got = g.generate(g.latents(7, seed=5), g.labels_for(7, None))
    assert torch.equal(got, ref)  # bit for bit: spectral norm folded, batch-norm statistics kept
    # no parametrization is left, and the module holds no training code's state
    assert not any(hasattr(m, "parametrizations") for m in g.net.modules())
    assert np.array_equal(g.sample(7, seed=5), gankit.load(runs / name).sample(7, seed=5))


def test_load_gives_images_interpolations_and_labels(runs, tmp_path):
    g = gankit.load(export(runs / "dcgan_cond_sn", "safetensors", tmp_path / "x"))
    x = g.sample(12, seed=1, label=3)
    assert x.dtype == np.uint8 and x.shape == (12, 16, 16, 1)
    assert not np.array_equal(x, g.sample(12, seed=2, label=3))
    assert not np.array_equal(x, g.sample(12, seed=1, label=4))
    assert np.array_equal(g.sample(12, seed=1, label="3"), x)  # a class by its name
    f = g.interpolate(steps=5, seed=0)
    assert f.shape == (5, 16, 16, 1)
    assert np.array_equal(f[0], g._finish(g.generate(g.latents(2, 0)[:1], torch.tensor([0])))[0])
    with pytest.raises(GankitError, match="label: must be 0..9"):
        g.sample(2, label=10)
    pts = gankit.load(runs / "mlp_points").sample(50, seed=0)
    assert pts.dtype == np.float32 and pts.shape == (50, 2)


def _onnx_run(path, z, y=None):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"z": z.numpy()}
    if y is not None:
        feeds["y"] = y.numpy()
    if "psi" in [i.name for i in sess.get_inputs()]:  # a generator that truncates in W: no truncation
        feeds["psi"] = np.ones(1, np.float32)
    assert [i.name for i in sess.get_inputs()] == list(feeds)
    return sess.run(None, feeds)[0]


@pytest.mark.parametrize("name", list(RUNS))
def test_onnx_equals_pytorch_for_batch_1_and_7(runs, tmp_path, name):
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    out = export(runs / name, "onnx", tmp_path / "x")
    meta = json.loads((out / "generator.json").read_text())
    assert meta["onnx"]["opset"] == 18
    import onnx

    model = onnx.load(str(out / "generator.onnx"))
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {18}
    g = gankit.load(out)
    for batch in (1, 7):
        z = torch.randn(batch, g.z_dim, generator=torch.Generator().manual_seed(batch))
        labels = torch.arange(batch) % g.num_classes if g.num_classes else None
        ref = g.generate(z, labels).numpy()
        y = torch.eye(g.num_classes)[labels] if g.num_classes else None
        got = _onnx_run(out / "generator.onnx", z, y)
        assert got.shape == ref.shape == (batch, *meta["output"]["shape"])
        # tolerance 1e-5; measured 4e-9 (mlp) to 2.7e-6 (resnet, whose convolutions ORT sums in another order)
        assert np.abs(got - ref).max() < 1e-5, name
    if g.num_classes:  # a blend of two classes is the blend of their embeddings, in both
        z = torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(9))
        y = torch.tensor([[0.5, 0.5] + [0.0] * (g.num_classes - 2)] * 2)
        assert np.abs(_onnx_run(out / "generator.onnx", z, y) - g.generate(z, y).numpy()).max() < 1e-5


def test_tampered_truncated_or_mismatched_exports_are_refused(runs, tmp_path):
    from safetensors.torch import load_file, save_file

    from gankit.paths import sha256_of

    out = export(runs / "dcgan_cond_sn", "safetensors", tmp_path / "x")
    w = out / "generator.safetensors"
    good = w.read_bytes()
    w.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit changed
    with pytest.raises(CheckpointError, match="generator.safetensors: its sha256 does not match"):
        gankit.load(out)
    w.write_bytes(good[: len(good) // 2])  # truncated
    r = _cli("sample", out, "--out", tmp_path / "s.png")
    assert r.returncode == 2 and "generator.safetensors: its sha256 does not match" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "s.png").exists()

    meta = json.loads((out / "generator.json").read_text())

    def rewrite(state):  # a consistent hash, so the shapes and keys are what is checked
        save_file(state, str(w))
        meta["weights"]["sha256"] = sha256_of(w)
        (out / "generator.json").write_text(json.dumps(meta))

    w.write_bytes(good)
    state = load_file(w)
    key = "fc.weight"
    rewrite({**state, key: torch.zeros(3, 3)})
    with pytest.raises(CheckpointError, match="generator.safetensors: does not fit dcgan"):
        gankit.load(out)
    rewrite({k: v for k, v in state.items() if k != key})
    with pytest.raises(CheckpointError, match="does not fit dcgan.*Missing key"):
        gankit.load(out)
    (out / "generator.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="generator.json: not a readable generator description"):
        gankit.load(out)


def test_sample_and_eval_accept_an_export_folder(runs, tmp_path):
    out = export(runs / "dcgan_cond_sn", "safetensors", tmp_path / "img")
    r = _cli("sample", out, "--out", tmp_path / "s.npz", "--n", 20, "--label", 2)
    assert r.returncode == 0, r.stderr
    arr = np.load(tmp_path / "s.npz")
    assert arr["images"].shape == (20, 16, 16, 1) and set(arr["labels"].tolist()) == {2}
    assert np.array_equal(arr["images"], gankit.load(out).sample(20, seed=0, label=2))
    r = _cli("sample", out, "--out", tmp_path / "r.png", "--reconstruct")
    assert r.returncode == 2 and "model.family=vae" in r.stderr
    pts = export(runs / "mlp_points", "safetensors", tmp_path / "pts")
    r = _cli("eval", pts, "--metrics", "modes", "--n", 200)
    assert r.returncode == 0, r.stderr
    ev = json.loads((pts / "eval.json").read_text())["evaluations"][-1]
    assert ev["provenance"]["checkpoint"] == str(pts) and ev["provenance"]["step"] == 3 and "modes" in ev


def test_export_refuses_bad_requests(runs, tmp_path):
    with pytest.raises(GankitError, match="--format: unknown"):
        export(runs / "vae", "pickle", tmp_path / "x")
    with pytest.raises(CheckpointError, match="no such run folder"):
        export(tmp_path / "nothing", "safetensors", tmp_path / "x")
    env = {"GANKIT_ORT_WEB": str(tmp_path / "no-ort"), "GANKIT_CACHE": str(tmp_path / "empty-cache")}
    r = _cli("export", runs / "vae", "--format", "web", "--out", tmp_path / "w", env=env)
    assert r.returncode == 2 and "make web" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "w").exists()


# --- the server --------------------------------------------------------------------------------

def test_resolve_inside_refuses_every_way_out(tmp_path):
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("hi")
    (root / "sub" / "a.js").write_text("x")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link").symlink_to(tmp_path / "secret.txt")
    (root / "inner").symlink_to(root / "sub")
    (root / "away").mkdir()
    (root / "away" / "index.html").symlink_to(tmp_path / "secret.txt")  # a folder's index that links out
    assert resolve_inside(root, "/") == (root / "index.html").resolve()
    assert resolve_inside(root, "/sub/a.js") == (root / "sub" / "a.js").resolve()
    assert resolve_inside(root, "/inner/a.js") == (root / "sub" / "a.js").resolve()  # a symlink that stays inside
    for bad in ("/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "//etc/passwd", "/%2Fetc%2Fpasswd",
                "/link", "/sub\\..\\..\\secret.txt", "/a%00b", "/away/", "/away"):
        assert resolve_inside(root, bad) is None, bad


def _get(server, path):
    host, port = server.server_address[:2]
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("GET", path)  # sent as written: no client-side normalisation of .. or //
    r = c.getresponse()
    return r.status, r.getheader("Content-Type"), r.read()


def test_server_serves_with_mime_types_and_stays_in_its_folder(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    for name in ("index.html", "gan.js", "ort.mjs", "x.wasm", "g.onnx", "generator.json"):
        (root / name).write_bytes(b"data")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "out").symlink_to(tmp_path / "secret.txt")
    server = make_server({"/": root})
    server.start()
    try:
        assert server.server_address[0] == "127.0.0.1"  # loopback unless --host says otherwise
        assert _get(server, "/")[:2] == (200, "text/html; charset=utf-8")
        types = {p: _get(server, p)[1] for p in ("/gan.js", "/ort.mjs", "/x.wasm", "/g.onnx", "/generator.json")}
        assert types == {"/gan.js": "text/javascript; charset=utf-8", "/ort.mjs": "text/javascript; charset=utf-8",
                         "/x.wasm": "application/wasm", "/g.onnx": "application/octet-stream", "/generator.json": "application/json"}
        for bad in ("/../secret.txt", "/%2e%2e/secret.txt", "/%2F" + str(tmp_path / "secret.txt"), "/out"):
            status, _, body = _get(server, bad)
            assert status == 403 and b"secret" not in body, bad
        # an absolute path: the standard library itself turns a leading // into / (so it names root/tmp/...)
        status, _, body = _get(server, "/" + str(tmp_path / "secret.txt"))
        assert status == 404 and b"secret" not in body
        assert _get(server, "/missing.js")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_serve_command_defaults_to_loopback_and_exports_a_run_on_the_fly(runs, tmp_path, monkeypatch):
    need(f"onnxruntime-web at {ORT_WEB}", ORT_WEB.is_dir())
    from gankit.cli import build_parser
    from gankit.web.server import sampler_folder

    a = build_parser().parse_args(["serve", str(tmp_path)])
    assert a.host == "127.0.0.1"
    monkeypatch.setenv("GANKIT_ORT_WEB", str(ORT_WEB))
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs / "dcgan_cond_sn", run)
    folder = sampler_folder(run)
    assert folder == run / "sampler" and (folder / "index.html").is_file() and (folder / "generator.onnx").is_file()
    stamp = (folder / "generator.json").stat().st_mtime_ns
    assert sampler_folder(run) == folder and (folder / "generator.json").stat().st_mtime_ns == stamp  # up to date: kept
    with pytest.raises(GankitError, match="without the sampler page"):
        sampler_folder(export(runs / "vae", "safetensors", tmp_path / "plain"))


def test_readme_python_lines_run_on_an_export(runs, tmp_path, monkeypatch):
    import re

    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Taking the generator out"):]
    block = re.search(r"```python\nimport gankit\n(.*?)```", section, re.S).group(0)
    code = block.split("\n", 1)[1].rsplit("```", 1)[0]
    export(runs / "dcgan_cond_sn", "safetensors", tmp_path / "export" / "demo")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    from PIL import Image

    assert Image.open(tmp_path / "threes.png").size[0] >= 64
