import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.errors import DataError

from .conftest import shared_data


def load(source, **kw):
    return load_dataset(DataConfig(source=str(source), **kw))


def _save(img: Image.Image, path: Path, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)


def test_builtin_toys_follow_the_papers():
    ring = load("ring8")
    assert ring.kind == "points" and ring.x.shape == (100_000, 2)
    d = (ring.x[:, None] - ring.centres[None]).norm(dim=2).min(1).values
    assert ring.std == 0.01 and float(d.mean()) == pytest.approx(0.01 * np.sqrt(np.pi / 2), rel=0.05)
    assert torch.allclose(ring.centres.norm(dim=1), torch.ones(8))
    grid = load("grid25")
    assert grid.std == 0.05 and sorted(set(grid.centres[:, 0].tolist())) == [-4, -2, 0, 2, 4]


def test_digits_and_mnist5k():
    d = load("digits")
    assert d.x.shape == (1797, 1, 8, 8) and d.x.dtype == torch.uint8 and d.num_classes == 10
    m = load("mnist5k", resolution=32)
    assert m.x.shape == (5000, 1, 32, 32) and int(m.labels.bincount().min()) == 500
    b = m.to_float(torch.arange(4))
    assert b.min() >= -1 and b.max() <= 1 and b.dtype == torch.float32


def test_folder_tree_with_every_mode(tmp_path):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8), "RGB")
    _save(rgb.convert("1"), tmp_path / "a" / "one.png")
    _save(rgb.convert("L"), tmp_path / "a" / "grey.jpg")
    _save(rgb.convert("P"), tmp_path / "a" / "palette.gif")
    _save(rgb.convert("LA"), tmp_path / "a" / "greyalpha.png")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(0)  # fully transparent: must come out white
    _save(rgba, tmp_path / "b" / "rgba.png")
    _save(rgb.convert("CMYK"), tmp_path / "b" / "cmyk.jpg")
    _save(Image.fromarray(rng.integers(0, 65535, (20, 30), dtype=np.uint16)), tmp_path / "b" / "sixteen.png")
    _save(rgb, tmp_path / "b" / "deep" / "nested.bmp")
    _save(rgb, tmp_path / "b" / "photo.webp")
    ds = load(tmp_path, resolution=16)
    assert ds.x.shape == (9, 3, 16, 16)  # colour present, so 3 channels
    assert ds.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*"))
    white = ds.x[names.index("b/rgba.png")]
    assert int(white.min()) == 255
    grey = load(tmp_path, resolution=8, channels=1)
    assert grey.x.shape == (9, 1, 8, 8)


def test_non_square_is_centre_cropped(tmp_path):
    a = np.zeros((20, 40), np.uint8)
    a[:, 10:30] = 255  # the centre 20 columns are white
    _save(Image.fromarray(a, "L"), tmp_path / "x.png")
    ds = load(tmp_path, resolution=10)
    assert ds.x.shape == (1, 1, 10, 10) and ds.labels is None
    assert int(ds.x.float().mean()) > 250


@pytest.mark.parametrize("layout", ["nhwc", "nchw", "nhw", "float01", "floatpm1", "rgba"])
def test_arrays(tmp_path, layout):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (5, 12, 12, 3), dtype=np.uint8)
    arr = {
        "nhwc": base, "nchw": base.transpose(0, 3, 1, 2), "nhw": base[..., 0],
        "float01": base.astype(np.float32) / 255, "floatpm1": base.astype(np.float32) / 127.5 - 1,
        "rgba": np.concatenate([base, np.full((5, 12, 12, 1), 255, np.uint8)], -1),
    }[layout]
    np.savez(tmp_path / "d.npz", images=arr, labels=np.arange(5))
    ds = load(tmp_path / "d.npz")
    c = 1 if layout == "nhw" else 3
    assert ds.x.shape == (5, c, 12, 12) and ds.labels.tolist() == [0, 1, 2, 3, 4]
    want = torch.from_numpy(base.transpose(0, 3, 1, 2)[:, :c].copy())
    assert (ds.x.int() - want.int()).abs().max() <= 1


def test_npy_and_2d_points(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 8, 8), np.uint8))
    assert load(tmp_path / "x.npy").x.shape == (4, 1, 8, 8)
    np.save(tmp_path / "p.npy", np.ones((50, 2), np.float32))
    assert load(tmp_path / "p.npy").kind == "points"


def _idx(path: Path, arr: np.ndarray, magic_dims: int, gz: bool = False):
    data = struct.pack(">BBBB", 0, 0, 8, magic_dims) + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_with_labels(tmp_path, gz):
    imgs = np.arange(3 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(3, 28, 28)
    ext = ".gz" if gz else ""
    _idx(tmp_path / f"t10k-images-idx3-ubyte{ext}", imgs, 3, gz)
    _idx(tmp_path / f"t10k-labels-idx1-ubyte{ext}", np.array([7, 1, 4], np.uint8), 1, gz)
    ds = load(tmp_path / f"t10k-images-idx3-ubyte{ext}")
    # labels 1, 4, 7 are classes 0..2, named by their values
    assert ds.x.shape == (3, 1, 28, 28) and ds.labels.tolist() == [2, 0, 1] and ds.class_names == ["1", "4", "7"]
    assert torch.equal(ds.x[:, 0], torch.from_numpy(imgs))


def test_csv_with_and_without_labels(tmp_path):
    rows = np.arange(2 * 16).reshape(2, 16) * 8
    (tmp_path / "a.csv").write_text("\n".join(",".join(map(str, r)) for r in rows))
    ds = load(tmp_path / "a.csv")
    assert ds.x.shape == (2, 1, 4, 4) and ds.labels is None and int(ds.x[1, 0, 3, 3]) == 31 * 8
    with gzip.open(tmp_path / "b.csv.gz", "wt") as f:
        f.write("\n".join(",".join(map(str, list(r) + [i])) for i, r in enumerate(rows)))
    ds = load(tmp_path / "b.csv.gz")
    assert ds.labels.tolist() == [0, 1]


@pytest.mark.parametrize("kind", ["junk", "truncated_png", "truncated_jpg"])
def test_bad_image_fails_naming_the_file_or_is_skipped(tmp_path, kind):
    good = Image.fromarray(np.full((8, 8), 100, np.uint8), "L")
    _save(good, tmp_path / "ok.png")
    bad = tmp_path / ("bad.png" if kind != "truncated_jpg" else "bad.jpg")
    if kind == "junk":
        bad.write_bytes(b"this is not an image at all" * 10)
    else:
        good.save(bad)
        bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])
    with pytest.raises(DataError, match="bad"):
        load(tmp_path)
    ds = load(tmp_path, on_bad_image="skip")
    assert len(ds) == 1 and ds.skipped == 1


@pytest.mark.parametrize("case,message", [
    ("empty", "no images found"),
    ("labels", "labels for"),
    ("shape", "expected images shaped"),
    ("nan", "NaN"),
    ("idx_magic", "magic"),
    ("idx_len", "header promises"),
    ("csv_ragged", "columns"),
    ("csv_text", "not a number"),
    ("unknown", "unknown data format"),
    ("missing", "no such file"),
])
def test_bad_data_is_one_clear_error(tmp_path, case, message):
    if case == "empty":
        target = tmp_path / "empty"
        target.mkdir()
    elif case in ("labels", "shape", "nan"):
        target = tmp_path / "a.npz"
        arr = {"labels": np.zeros((4, 8, 8), np.uint8), "shape": np.zeros((4, 8), np.uint8), "nan": np.full((4, 8, 8), np.nan)}[case]
        np.savez(target, images=arr, labels=np.arange(3 if case == "labels" else 4))
    elif case.startswith("idx"):
        target = tmp_path / "x-images-idx3-ubyte"
        data = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", 2, 4, 4) + bytes(32 if case == "idx_len" else 0)
        target.write_bytes(b"\x01\x02\x03\x04" + data[4:] if case == "idx_magic" else data[:-1])
    elif case == "csv_ragged":
        target = tmp_path / "a.csv"
        target.write_text("1,2,3,4\n1,2,3\n")
    elif case == "csv_text":
        target = tmp_path / "a.csv"
        target.write_text("1,2,3,4\n1,two,3,4\n")
    elif case == "unknown":
        target = tmp_path / "a.txt"
        target.write_text("hello")
    else:
        target = tmp_path / "nope.npz"
    with pytest.raises(DataError) as e:
        load(target)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unknown_builtin_lists_choices():
    from gankit.errors import ConfigError

    with pytest.raises(ConfigError, match="ring8"):
        load("rign8")


def test_real_omniglot_tree(tmp_path):
    import zipfile

    z = shared_data("omniglot") / "images_background_small1.zip"
    with zipfile.ZipFile(z) as f:
        members = [m for m in f.namelist() if m.endswith(".png")][:40]
        f.extractall(tmp_path, members)
    ds = load(tmp_path, resolution=32)
    assert ds.x.shape == (40, 1, 32, 32) and ds.kind == "image"


def test_mirror_doubles_the_data_with_x_flips(tmp_path):
    """data.mirror (StyleGAN2-ADA's and R3GAN's --mirror=1): the order walks 2N rows, row N + i is image i
    flipped left-right with image i's label; a run with it trains and resumes to the same weights."""
    from gankit.config import make_config
    from gankit.errors import GankitError
    from gankit.training.batches import Batches
    from gankit.training.loop import train
    from gankit.training.state import build_state

    from .conftest import tiny_overrides

    cfg = make_config({}, tiny_overrides(**{"data.mirror": "true", "model.conditional": "true"}))
    ds = load_dataset(cfg.data)
    n = len(ds)
    p = build_state(cfg, ds)
    assert p.order.n == 2 * n
    b = Batches(ds, torch.device("cpu"), False, True)
    idx = torch.tensor([0, 5, n, n + 5])
    x, y = b.real(idx)
    assert torch.equal(x[2], x[0].flip(-1)) and torch.equal(x[3], x[1].flip(-1)) and not torch.equal(x[2], x[0])
    assert y.tolist() == [int(ds.labels[0]), int(ds.labels[5])] * 2
    straight = train(cfg, tmp_path / "a", quiet=True)
    short = make_config({}, tiny_overrides(**{"data.mirror": "true", "model.conditional": "true", "train.steps": 3}))
    train(short, tmp_path / "b", quiet=True)
    resumed = train(cfg, tmp_path / "b", resume="auto", quiet=True)
    for k, v in straight.G.state_dict().items():
        assert torch.equal(v, resumed.G.state_dict()[k]), k
    with pytest.raises(GankitError, match="data.mirror"):
        make_config({}, tiny_overrides(**{"data.mirror": "true", "data.pairs": "grey", "model.family": "pix2pix"}))
    with pytest.raises(GankitError, match="data.mirror"):
        train(make_config({}, ["data.source=ring8", "model.arch=mlp", "data.mirror=true", "train.steps=1"]), tmp_path / "c", quiet=True)
