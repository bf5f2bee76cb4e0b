"""The sampler page in headless Chromium: it samples in the browser, and its pixels for a latent equal
Python onnxruntime's output for the same latent. Needs Debian's chromium, Playwright's Python package
and onnxruntime-web (`make web`); in CI all three are installed and this test must run."""
import shutil

import numpy as np
import pytest

from gankit.config import make_config
from gankit.artefact.export import export
from gankit.training.loop import train
from gankit.web.server import make_server

from .conftest import ARTIFACTS, ORT_WEB, need, tiny_overrides

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    need("chromium", shutil.which("chromium") is not None)
    need(f"onnxruntime-web at {ORT_WEB}", ORT_WEB.is_dir())
    try:
        import onnxruntime  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        need(f"the Python package {e.name}", False)
    root = tmp_path_factory.mktemp("web")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANKIT_CACHE", str(root / "cache"))
        mp.setenv("GANKIT_ORT_WEB", str(ORT_WEB))
        out = {}
        for name, extra in {"digits": {"model.conditional": True},
                            "ring": {"data.source": "ring8", "model.arch": "mlp", "model.width": 16, "model.z_dim": 4},
                            "sg2": {"model.arch": "stylegan2", "model.width": 4}}.items():
            opts = [o for o in tiny_overrides(**{"train.steps": 3, "train.checkpoint_every": 3, **extra}) if "resolution" not in o or name != "ring"]
            train(make_config({}, opts), root / name)
            out[name] = export(root / name, "web", root / f"{name}-web")
    return out


@pytest.fixture
def browser(tmp_path):
    need("chromium", shutil.which("chromium") is not None)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("the Python package playwright", False)

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield ctx
        finally:
            ctx.close()


def _open(ctx, folder):
    server = make_server({"/": folder})
    server.start()
    page = ctx.new_page()
    seen = {"console": [], "requests": []}
    page.on("console", lambda m: seen["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: seen["console"].append(("pageerror", str(e))))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.goto(server.url)
    page.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)", timeout=60_000)
    return server, page, seen


def _python_ort(folder, z, y, psi=None):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(folder / "generator.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"z": z} if y is None else {"z": z, "y": y}
    if psi is not None:
        feeds["psi"] = np.array([psi], np.float32)
    return sess.run(None, feeds)[0]


def test_sampler_page_truncates_a_stylegan2_in_w(exports, browser):
    folder = exports["sg2"]
    server, page, seen = _open(browser, folder)
    try:
        assert page.evaluate("document.body.dataset.state") == "ready", page.evaluate("window.gankit.errors")
        renders = page.evaluate("window.gankit.renders")
        page.locator("#truncation").fill("0.5")
        page.wait_for_function(f"window.gankit.renders > {renders}")
        last = page.evaluate("window.gankit.last")
        z = np.array(last["z"], np.float32).reshape(16, -1)
        got = np.array(last["images"], np.float32).reshape(16, 1, 16, 16)
        # z left as drawn and psi = 0.5 fed to the graph: pulled towards w's mean, not a scaled z
        assert np.abs(got - _python_ort(folder, z, None, 0.5)).max() < 1e-4
        assert np.abs(got - _python_ort(folder, z, None, 1.0)).max() > 1e-3
        assert not [m for m in seen["console"] if m[0] in ("error", "pageerror")]
    finally:
        server.shutdown()
        server.server_close()


def test_sampler_page_pixels_equal_python_onnxruntime(exports, browser):
    folder = exports["digits"]
    server, page, seen = _open(browser, folder)
    try:
        assert page.evaluate("document.body.dataset.state") == "ready", page.evaluate("window.gankit.errors")
        renders = page.evaluate("window.gankit.renders")
        page.locator("#truncation").fill("0.5")  # moves the slider: a new batch, latents scaled by 0.5
        page.wait_for_function(f"window.gankit.renders > {renders}")
        last = page.evaluate("window.gankit.last")
        assert last["truncation"] == 0.5 and last["dims"] == [16, 1, 16, 16]
        z = np.array(last["z"], np.float32).reshape(16, -1)
        y = np.array(last["y"], np.float32).reshape(16, 10)
        assert np.array_equal(y.argmax(1), np.arange(16) % 10) and y.sum() == 16  # classes in turn, one-hot
        ref = _python_ort(folder, z, y)
        got = np.array(last["images"], np.float32).reshape(ref.shape)
        assert np.abs(got - ref).max() < 1e-4  # wasm against the CPU provider; measured about 1e-6
        # the pixels on the canvas: the centre of each of the first sample's 16x16 pixels, drawn 96 px wide
        centres = page.evaluate("""() => {
            const ctx = document.getElementById('grid').getContext('2d'), out = [];
            for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) out.push(ctx.getImageData(1 + (j + 0.5) * 6, 1 + (i + 0.5) * 6, 1, 1).data[0]);
            return out; }""")
        expect = np.round((np.clip(ref[0, 0], -1, 1) + 1) * 127.5)
        assert np.abs(np.array(centres).reshape(16, 16) - expect).max() <= 1
        assert len(np.unique(centres)) > 10  # an image, not a flat canvas
        # a class picked: every row one-hot on it
        page.select_option("#class-a", "3")
        page.wait_for_function(f"window.gankit.renders > {renders + 1}")
        y3 = np.array(page.evaluate("window.gankit.last.y"), np.float32).reshape(16, 10)
        assert (y3.argmax(1) == 3).all()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "sampler.png"), full_page=True)
        assert (ARTIFACTS / "sampler.png").stat().st_size > 10_000
        errors = [m for m in seen["console"] if m[0] in ("error", "pageerror")]
        assert not errors, errors
        assert all(u.startswith(server.url) or u.startswith("data:") for u in seen["requests"]), seen["requests"]
    finally:
        server.shutdown()
        server.server_close()


def test_sampler_page_draws_2d_points(exports, browser):
    server, page, seen = _open(browser, exports["ring"])
    try:
        assert page.evaluate("document.body.dataset.state") == "ready", page.evaluate("window.gankit.errors")
        last = page.evaluate("window.gankit.last")
        assert last["dims"] == [1000, 2]
        ref = _python_ort(exports["ring"], np.array(last["z"], np.float32).reshape(1000, -1), None)
        assert np.abs(np.array(last["images"], np.float32).reshape(ref.shape) - ref).max() < 1e-4
        assert page.is_hidden("#image-tools")
        assert not [m for m in seen["console"] if m[0] in ("error", "pageerror")]
        page.screenshot(path=str(ARTIFACTS / "sampler-2d.png"), full_page=True)
    finally:
        server.shutdown()
        server.server_close()


def _errors(seen):
    return [m for m in seen if m[0] in ("error", "pageerror")]


def test_report_renders_offline_and_its_grid_slider_works(browser, tmp_path):
    from .test_report import synthetic_run

    run = synthetic_run(tmp_path / "run", grids=6)
    from gankit.analysis.report import write_report

    path = write_report(run)
    page = browser.new_page()
    seen, requests = [], []
    page.on("console", lambda m: seen.append((m.type, m.text)))
    page.on("pageerror", lambda e: seen.append(("pageerror", str(e))))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert page.evaluate("Array.from(document.images).length") == 2
    assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert page.evaluate("document.querySelectorAll('svg.chart').length") >= 9
    before = page.get_attribute("#grid-img", "src")
    page.locator("#grid-slider").fill("0")
    assert page.text_content("#grid-step") == "step 100"
    after = page.get_attribute("#grid-img", "src")
    assert after != before and page.evaluate("document.getElementById('grid-img').naturalWidth") > 0
    assert not _errors(seen), seen
    assert all(u == path.as_uri() or u.startswith("data:") for u in requests), requests  # no network requests
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)


def test_live_view_of_a_running_2d_run_follows_it(browser, tmp_path):
    import os
    import subprocess
    import sys
    import time

    from gankit.web.server import run_server

    run = tmp_path / "ring"
    args = ["data.source=ring8", "model.arch=mlp", "model.width=32", "model.z_dim=4", "train.steps=200000", "train.batch_size=64",
            "train.log_every=50", "train.sample_every=200", "train.snapshot_every=100", "train.checkpoint_every=100000", "train.threads=1"]
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "train", *args, "--out", str(run)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "GANKIT_CACHE": str(tmp_path / "cache")})
    server = None
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not ((run / "snapshots.jsonl").is_file() and (run / "snapshots.jsonl").read_text().count("\n") >= 1):
            assert proc.poll() is None, "the training died"
            time.sleep(0.3)
        server = run_server(run)
        server.start()
        page = browser.new_page()
        seen, requests = [], []
        page.on("console", lambda m: seen.append((m.type, m.text)))
        page.on("pageerror", lambda e: seen.append(("pageerror", str(e))))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.url)

        def shown_step():
            try:
                return int(page.evaluate("document.getElementById('field') ? document.getElementById('field').dataset.step || -1 : -1"))
            except Exception:  # noqa: BLE001 - the page is reloading
                return -1

        deadline = time.time() + 60
        while time.time() < deadline and shown_step() < 0:
            time.sleep(0.3)
        first = shown_step()
        assert first >= 100
        deadline = time.time() + 90
        while time.time() < deadline and shown_step() <= first:  # the page reloads itself as snapshots arrive
            time.sleep(0.5)
        later = shown_step()
        assert later > first, (first, later)
        assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        # the heat map is drawn: the canvas holds more than one colour
        colours = page.evaluate("""() => { const c = document.getElementById('field').getContext('2d');
            const d = c.getImageData(0, 0, 520, 520).data, seen = new Set();
            for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]); return seen.size; }""")
        assert colours > 20
        assert not _errors(seen), seen
        assert all(u.startswith(server.url) or u.startswith("data:") for u in requests), requests
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live-2d.png"), full_page=True)
    finally:
        proc.kill()
        proc.wait()
        if server is not None:
            server.shutdown()
            server.server_close()


def _slide(page, index, value):
    before = page.evaluate("window.gankit.chosenRenders || 0")
    page.locator(f"#dims input[data-dim='{index}']").fill(str(value))
    page.wait_for_function(f"window.gankit.chosenRenders > {before}")
    return page.evaluate("window.gankit.chosenState")


@pytest.mark.parametrize("name", ["digits", "sg2"])
def test_direction_sliders_edit_the_chosen_sample_as_python_does(exports, browser, name):
    import json

    import onnxruntime as ort
    import torch

    import gankit

    folder = exports[name]
    meta = json.loads((folder / "generator.json").read_text())
    server, page, seen = _open(browser, folder)
    try:
        assert page.evaluate("document.body.dataset.state") == "ready", page.evaluate("window.gankit.errors")
        page.wait_for_function("window.gankit.chosenState")
        state = _slide(page, 0, 2)
        state = _slide(page, 2, -1.5)
        method = state["method"]
        d = meta["directions"][method]
        assert state["space"] == ("w" if name == "sg2" else "z") and state["amounts"][:3] == [2, 0, -1.5]
        base = np.array(state["base"], np.float32)
        expect = base + 2 * d["std"][0] * np.array(d["vectors"][0]) - 1.5 * d["std"][2] * np.array(d["vectors"][2])
        assert np.abs(np.array(state["latent"]) - expect).max() < 1e-5
        got = np.array(state["images"], np.float32).reshape(state["dims"])
        lat = np.array(state["latent"], np.float32)[None]
        if name == "sg2":  # the synthesis half, one w for every layer
            ws = np.repeat(lat[:, None], meta["onnx_w"]["synthesis"]["inputs"]["ws"][1], 1)
            ref = ort.InferenceSession(str(folder / "synthesis.onnx"), providers=["CPUExecutionProvider"]).run(None, {"ws": ws})[0]
            y = None
        else:
            y = np.array(state["y"], np.float32)[None]
            ref = _python_ort(folder, lat, y)
        assert np.abs(got - ref).max() < 1e-4
        assert len(np.unique(got.round(3))) > 20
        # gankit's Python edit (PyTorch) of the same latent: direction 2 applied first, then direction 0 by the API
        label = int(np.argmax(y)) if y is not None else None
        half = torch.tensor(base - 1.5 * d["std"][2] * np.array(d["vectors"][2], np.float32))[None]
        py = gankit.load(folder).edit(half, 0, 2.0, method=method, label=label)
        shown = np.round((np.clip(got, -1, 1) + 1) * 127.5).transpose(0, 2, 3, 1)
        assert py.shape == shown.shape and np.abs(py.astype(int) - shown).max() <= 1
        # the hint strips: one per direction
        assert page.locator("#dims canvas").count() == len(d["vectors"])
        if name == "sg2":  # the other method's sliders
            page.select_option("#method", "ganspace")
            page.wait_for_function("window.gankit.chosenState.method === 'ganspace'")
        assert not [m for m in seen["console"] if m[0] in ("error", "pageerror")]
        page.screenshot(path=str(ARTIFACTS / f"sampler-directions-{name}.png"), full_page=True)
    finally:
        server.shutdown()
        server.server_close()


def test_bring_your_own_image_projects_on_the_server_and_edits_in_the_page(exports, browser, tmp_path):
    import base64
    import io
    import json

    from PIL import Image

    from gankit.web.server import projection_api

    folder = exports["sg2"]
    meta = json.loads((folder / "generator.json").read_text())
    server = make_server({"/": folder})
    projection_api(server, lambda: folder, steps=20)
    server.start()
    try:
        page = browser.new_page()
        seen = []
        page.on("console", lambda m: seen.append((m.type, m.text)))
        page.on("pageerror", lambda e: seen.append(("pageerror", str(e))))
        page.goto(server.url)
        page.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)", timeout=60_000)
        assert page.is_visible("#upload-panel")
        img = tmp_path / "mine.png"
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (30, 44, 3), dtype=np.uint8)).save(img)
        page.set_input_files("#upload", str(img))
        page.wait_for_function("document.body.dataset.upload === 'shown' || (window.gankit.upload || {}).state === 'refused'", timeout=120_000)
        job = page.evaluate("window.gankit.upload")
        assert job["state"] == "shown" and job["space"] == "w" and job["steps"] == 20, job
        state = page.evaluate("window.gankit.chosenState")
        assert state["source"] == "projection" and np.allclose(state["base"], job["latent"], atol=1e-6)
        # the page's image of the projected latent is the server's reconstruction (to 8-bit rounding)
        server_png = np.asarray(Image.open(io.BytesIO(base64.b64decode(job["image"].split(",", 1)[1]))).convert("L"), np.int32)
        got = np.round((np.clip(np.array(state["images"]).reshape(16, 16), -1, 1) + 1) * 127.5)
        assert np.abs(server_png - got).max() <= 1
        assert "pixel distance" in page.text_content("#upload-status")
        moved = _slide(page, 1, 3)
        assert moved["source"] == "projection" and not np.allclose(moved["images"], state["images"])
        assert meta["onnx_w"] and not [m for m in seen if m[0] in ("error", "pageerror")]
        page.screenshot(path=str(ARTIFACTS / "sampler-upload.png"), full_page=True)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def translators(tmp_path_factory):
    need("chromium", shutil.which("chromium") is not None)
    need(f"onnxruntime-web at {ORT_WEB}", ORT_WEB.is_dir())
    from .test_translation import cyc_overrides, p2p_overrides

    root = tmp_path_factory.mktemp("web-translate")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANKIT_CACHE", str(root / "cache"))
        mp.setenv("GANKIT_ORT_WEB", str(ORT_WEB))
        for name, opts in {"pix2pix": p2p_overrides, "cyclegan": cyc_overrides}.items():
            train(make_config({}, opts(**{"train.steps": 2, "train.checkpoint_every": 2})), root / name, quiet=True)
            out[name] = export(root / name, "web", root / f"{name}-web")
    return out


@pytest.mark.parametrize("name", ["pix2pix", "cyclegan"])
def test_translating_page_translates_a_local_image_as_python_does(translators, browser, tmp_path, name):
    from PIL import Image

    import gankit

    folder = translators[name]
    img = tmp_path / "photo.png"  # colour, an odd size: padded to the network's multiple and cropped back
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (21, 35, 3), dtype=np.uint8)).save(img)
    server, page, seen = _open(browser, folder)
    try:
        assert page.evaluate("document.body.dataset.state") == "ready", page.evaluate("window.gankit.errors")
        g = gankit.load(folder)
        for k, direction in enumerate(["AtoB", "BtoA"] if name == "cyclegan" else ["AtoB"]):
            if direction == "BtoA":
                page.select_option("#direction", "BtoA")
            else:
                page.set_input_files("#file", str(img))
            page.wait_for_function(f"window.gankit.translations >= {k + 1}")
            last = page.evaluate("window.gankit.last")
            assert last["direction"] == direction and last["width"] == 35 and last["height"] == 21
            out = np.array(last["output"], np.float32).reshape(last["dims"])
            shown = np.round((np.clip(out[0], -1, 1) + 1) * 127.5).transpose(1, 2, 0).astype(int)
            ref = g.translate(Image.open(img), direction=direction).astype(int)  # read as training data were: grey by Pillow's luminance
            assert shown.shape == ref.shape and np.abs(shown - ref).max() <= 1, np.abs(shown - ref).max()
            canvas = np.array(page.evaluate("""() => Array.from(document.getElementById('output').getContext('2d')
                .getImageData(0, 0, 35, 21).data)""")).reshape(21, 35, 4)[..., :3]
            assert np.abs(canvas - np.broadcast_to(shown, canvas.shape)).max() <= 1  # what is drawn
        assert not [m for m in seen["console"] if m[0] in ("error", "pageerror")]
        page.screenshot(path=str(ARTIFACTS / f"translate-{name}.png"), full_page=True)
    finally:
        server.shutdown()
        server.server_close()
