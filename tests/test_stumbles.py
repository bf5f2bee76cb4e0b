"""Where users stumbled (issue: a second newcomer pass): class names wherever a label is taken, why a
run stopped, resume refusals, one-line server errors, small reprs and messages."""
import numpy as np
import pytest
from PIL import Image

from gankit.cli import main
from gankit.config import make_config
from gankit.errors import GankitError
from gankit.training.loop import train
from gankit.artefact.sampling import resolve_label

from .conftest import ORT_WEB, need, tiny_overrides
from .test_rough_edges import _err_line


@pytest.fixture(scope="module")
def named_run(tmp_path_factory):
    """A conditional run on a folder with two named classes."""
    root = tmp_path_factory.mktemp("named")
    rng = np.random.default_rng(0)
    for cls, level in (("cat", 60), ("horse", 200)):
        (root / "data" / cls).mkdir(parents=True)
        for i in range(8):
            Image.fromarray((rng.integers(0, 40, (16, 16, 3)) + level).astype(np.uint8)).save(root / "data" / cls / f"{i}.png")
    cfg = make_config({}, tiny_overrides(**{"data.source": str(root / "data"), "model.conditional": "true", "train.batch_size": 8}))
    train(cfg, root / "run", quiet=True)
    return root / "run"


def test_a_label_is_taken_by_name_or_index():
    names = ["cat", "horse"]
    assert resolve_label("horse", 2, names) == 1 and resolve_label("1", 2, names) == 1 and resolve_label(0, 2, names) == 0
    assert resolve_label(None, 2, names) is None
    assert resolve_label("3", 10, [str(i) for i in range(10)]) == 3
    with pytest.raises(GankitError, match="unknown class 'zebra'; the classes are cat, horse"):
        resolve_label("zebra", 2, names)
    with pytest.raises(GankitError, match=r"must be 0..1 \(the model has 2 classes\), got 5; or a class name \(cat, horse\)"):
        resolve_label(5, 2, names)
    with pytest.raises(GankitError, match="unconditional"):
        resolve_label("cat", 0, [])


def test_sample_takes_a_class_name_and_the_start_line_names_the_classes(named_run, tmp_path, capsys):
    import gankit
    assert main(["sample", str(named_run), "--label", "horse", "--n", "4", "--out", str(tmp_path / "h.npz")]) == 0
    y = np.load(tmp_path / "h.npz")["labels"]
    assert y.tolist() == [1, 1, 1, 1]
    assert main(["sample", str(named_run), "--label", "zebra", "--out", str(tmp_path / "z.png")]) == 2
    assert "--label: unknown class 'zebra'; the classes are cat, horse" in _err_line(capsys)
    g = gankit.load(named_run)
    assert np.array_equal(g.sample(2, label="horse"), g.sample(2, label=1))
    train(make_config({}, tiny_overrides(**{"data.source": str(named_run.parent / "data"), "model.conditional": "true",
                                            "train.batch_size": 8, "train.steps": 1})), tmp_path / "again")
    assert "2 classes (cat, horse)" in capsys.readouterr().err


def test_a_run_says_why_it_stopped_and_what_to_raise(tmp_path, capsys):
    over = tiny_overrides(**{"train.steps": 1000, "train.max_minutes": 0.0005})
    p = train(make_config({}, over), tmp_path / "r")
    err = capsys.readouterr().err
    assert p.step < 1000
    assert f"done: {p.step} steps" in err and "the time budget train.max_minutes=0.0005 is spent" in err
    assert "--resume auto train.max_minutes=0.001" in err
    train(make_config({}, over), tmp_path / "r", resume="auto")
    assert "already finished at step" in (e := capsys.readouterr().err) and "train.max_minutes=0.0005 is spent" in e
    train(make_config({}, tiny_overrides()), tmp_path / "s")
    assert "done: 6 steps" in (e := capsys.readouterr().err) and "reached train.steps=6" in e


def test_resume_auto_with_settings_but_no_config_or_checkpoint_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty"
    assert main(["train", "--resume", "auto", "--out", str(empty), "data.resolution=32", "train.steps=2"]) == 2
    line = _err_line(capsys)
    assert f"{empty}: no checkpoint to resume; to start a run there, give its config" in line
    assert not empty.exists()


def test_serve_answers_at_once_and_prepares_the_sampler_in_the_background(tmp_path, monkeypatch):
    """The report is served before the sampler's export finishes; /sampler/ says it is being prepared,
    then serves the page."""
    need(f"onnxruntime-web at {ORT_WEB}", ORT_WEB.is_dir())
    monkeypatch.setenv("GANKIT_ORT_WEB", str(ORT_WEB))
    import threading
    import urllib.request

    import gankit.artefact.export
    from gankit.web.server import run_server

    run = tmp_path / "run"
    train(make_config({}, tiny_overrides()), run, quiet=True)
    release, real_export = threading.Event(), gankit.artefact.export.export

    def slow_export(*a, **k):
        assert release.wait(60)
        return real_export(*a, **k)

    monkeypatch.setattr(gankit.artefact.export, "export", slow_export)
    ready = []
    server = run_server(run, on_ready=ready.append)
    server.start()
    try:
        assert "gankit" in urllib.request.urlopen(server.url, timeout=10).read().decode()  # the report, while exporting
        page = urllib.request.urlopen(server.url + "sampler", timeout=10).read().decode()  # redirected to /sampler/
        assert "preparing the sampler" in page and not ready
        release.set()
        server.preparing.join(120)
        assert ready == [server.url + "sampler/"]
        page = urllib.request.urlopen(server.url + "sampler/", timeout=10).read().decode()
        assert "preparing" not in page and page == (run / "sampler" / "index.html").read_text()
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_dropped_connection_is_one_line_and_the_server_keeps_serving(tmp_path, capsys):
    import socket
    import struct
    import urllib.request

    from gankit.web.server import make_server

    (tmp_path / "big.bin").write_bytes(b"x" * (32 << 20))
    (tmp_path / "index.html").write_text("hello")
    server = make_server({"/": tmp_path})
    server.start()
    try:
        for _ in range(3):  # a client that asks for a large file, then resets the connection
            s = socket.create_connection(server.server_address[:2])
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(1024)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        assert urllib.request.urlopen(server.url + "index.html", timeout=10).read() == b"hello"
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and all("closed the connection mid-answer" in ln and "still serving" in ln for ln in lines), lines


def test_small_ones_dry_run_says_passed_repr_is_one_line_and_a_failed_train_leaves_no_folder(named_run, tmp_path, capsys):
    import gankit
    assert main(["train", *tiny_overrides(), "--dry-run", "--out", str(tmp_path / "d")]) == 0
    captured = capsys.readouterr()
    assert "train:" in captured.out and "dry run: all checks passed" in captured.err
    r = repr(gankit.load(named_run))
    assert "\n" not in r and r.startswith("<gankit.Generator dcgan image 3x16x16, 2 classes (cat, horse), step 6, from ")
    bad = tmp_path / "nothing.npz"
    bad.write_bytes(b"not an array file")
    assert main(["train", *tiny_overrides(**{"data.source": str(bad)}), "--out", str(tmp_path / "failed")]) == 2
    assert not (tmp_path / "failed").exists()
    (tmp_path / "mine").mkdir()
    assert main(["train", *tiny_overrides(**{"data.source": str(bad)}), "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine").is_dir() and not list((tmp_path / "mine").iterdir())


def test_compare_chooses_features_that_can_judge_the_data_and_says_why(named_run, tmp_path, capsys):
    from gankit.data import load_dataset
    from gankit.metrics.features import default_features

    assert default_features(load_dataset(make_config({}, ["data.source=digits"]).data))[0] == "classifier"
    feats, why = default_features(load_dataset(make_config({}, [f"data.source={named_run.parent / 'data'}", "data.resolution=16"]).data))
    assert feats == "inception" and "2 classes learns only to tell them apart" in why
    assert main(["compare", str(named_run), "--n", "16", "--metrics", "fid", "--out", str(tmp_path / "c")]) == 0
    assert "compare: features inception (Inception, trained on photos;" in capsys.readouterr().err
    assert "features: inception (Inception, trained on photos;" in (tmp_path / "c" / "compare.md").read_text()
