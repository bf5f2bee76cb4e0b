"""Image folders at scale: cheap checks before decoding, limit from the file list, one image at a
time into the final array, the decoded cache, and skipped files reported."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import folder as folder_mod
from gankit.data import load_dataset
from gankit.data.images import decode_file, resize_crop, to_array

from .conftest import ROOT


def _folder(root, n=12, size=(40, 30), classes=("a", "b"), seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        p = root / classes[i % len(classes)] / f"{i:03d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB").save(p)
    return root


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    real = folder_mod.decode_to_array

    def spy(path, *a):
        calls.append(path)
        return real(path, *a)

    monkeypatch.setattr(folder_mod, "decode_to_array", spy)
    return calls


def test_a_resolution_the_architecture_lacks_is_refused_before_any_image_is_decoded(tmp_path, capsys, count_decodes):
    src = _folder(tmp_path / "imgs", n=30)
    rc = main(["train", str(ROOT / "configs" / "folder64.yaml"), f"data.source={src}", "data.limit=5", "data.resolution=1024",
               "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "data.resolution: dcgan supports 16, 32, 64" in err and len(err.strip().splitlines()) == 1
    assert count_decodes == []  # not a single file decoded
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_limit_chooses_from_the_file_list(tmp_path, count_decodes):
    src = _folder(tmp_path / "imgs", n=40)
    ds = load_dataset(DataConfig(source=str(src), resolution=16, channels=3, limit=7))
    assert len(ds) == 7 and len(count_decodes) == 7  # the other 33 files are never opened
    again = load_dataset(DataConfig(source=str(src), resolution=16, channels=3, limit=7, cache=False))
    assert torch.equal(ds.x, again.x)


def test_decoded_pixels_match_one_image_at_a_time_decoding(tmp_path):
    src = _folder(tmp_path / "imgs", n=6, size=(50, 37))
    ds = load_dataset(DataConfig(source=str(src), resolution=16, cache=False))
    files = sorted(src.rglob("*.png"))
    ref = np.stack([to_array(resize_crop(decode_file(p), 16), 3) for p in files])
    assert np.array_equal(ds.x.numpy(), ref) and ds.labels.tolist() == [0, 0, 0, 1, 1, 1] and ds.class_names == ["a", "b"]


def test_second_load_comes_from_the_memory_mapped_cache_until_a_file_changes(tmp_path, count_decodes):
    src = _folder(tmp_path / "imgs", n=10)
    cfg = DataConfig(source=str(src), resolution=16, channels=3)
    first = load_dataset(cfg)
    assert len(count_decodes) == 10
    fd = folder_mod.read_folder(src, cfg)
    assert len(count_decodes) == 10 and isinstance(fd.x, np.memmap)  # no decoding: read from the cache
    second = load_dataset(cfg)
    assert torch.equal(first.x, second.x) and torch.equal(first.labels, second.labels)
    assert second.fingerprint() == first.fingerprint() == load_dataset(DataConfig(source=str(src), resolution=16, channels=3, cache=False)).fingerprint()
    assert any("decoded cache" in n for n in second.notes)
    p = sorted(src.rglob("*.png"))[3]
    Image.new("RGB", (40, 30), (255, 0, 0)).save(p)  # a changed file invalidates the cache
    third = load_dataset(cfg)
    assert len(count_decodes) == 30 and not torch.equal(third.x, first.x)  # 10 + 10 without the cache + 10 afresh


def test_bad_and_foreign_files_are_counted_named_and_stored(tmp_path, capsys):
    src = _folder(tmp_path / "imgs", n=8)
    (src / "a" / "empty.png").write_bytes(b"")
    (src / "a" / "noise.png").write_bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes())
    buf = (src / "b" / "001.png").read_bytes()
    (src / "b" / "cut.png").write_bytes(buf[: len(buf) // 2])
    (src / "notes.txt").write_text("not an image")
    (src / "a" / "Thumbs.db").write_bytes(b"\0" * 10)
    rc = main(["train", f"data.source={src}", "data.resolution=16", "data.on_bad_image=skip", "model.width=8", "model.z_dim=8",
               "train.steps=2", "train.batch_size=4", "train.log_every=1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 0
    skip = [x for x in err.splitlines() if "skipped 3 unreadable image(s)" in x]
    assert len(skip) == 1 and "a/empty.png" in skip[0] and "a/noise.png" in skip[0] and "b/cut.png" in skip[0]
    ignored = [x for x in err.splitlines() if "ignored 2 file(s) that are not images" in x]
    assert len(ignored) == 1 and "notes.txt" in ignored[0] and "Thumbs.db" in ignored[0]
    state = torch.load(sorted((tmp_path / "run" / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    assert state["data"]["skipped"] == 3 and state["data"]["size"] == 8
    assert sorted(state["data"]["skipped_files"]) == ["a/empty.png", "a/noise.png", "b/cut.png"]


def test_a_skipped_file_is_replaced_from_the_rest_under_a_limit(tmp_path):
    src = _folder(tmp_path / "imgs", n=20, classes=("x",))
    for p in sorted(src.rglob("*.png"))[::2]:
        p.write_bytes(b"broken")
    ds = load_dataset(DataConfig(source=str(src), resolution=16, limit=8, on_bad_image="skip"))
    assert len(ds) == 8 and ds.skipped >= 1


def test_memory_holds_the_final_array_not_the_originals(tmp_path):
    """120 photos of 1600x1200 (690 MB decoded, as the old loader held them) loaded at 32x32 in a
    child process: its peak memory grows by far less than one tenth of that."""
    src = tmp_path / "big"
    src.mkdir()
    yy, xx = np.mgrid[0:1200, 0:1600]
    for i in range(120):
        img = np.stack([(xx + 7 * i) % 256, (yy + 3 * i) % 256, (xx + yy) % 256], -1).astype(np.uint8)
        Image.fromarray(img).save(src / f"{i:03d}.{'jpg' if i % 4 else 'png'}", quality=90)
    code = textwrap.dedent(f"""
        import json, resource
        from gankit.config import DataConfig
        from gankit.data import load_dataset
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ds = load_dataset(DataConfig(source={str(src)!r}, resolution=32, channels=3, cache=False))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"n": len(ds), "grew_mb": (peak - base) / 1024}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["n"] == 120 and res["grew_mb"] < 69, res


@pytest.mark.parametrize("cache", [True, False])
def test_worker_processes_decode_what_this_process_would(tmp_path, monkeypatch, cache):
    src = _folder(tmp_path / "imgs", n=600, size=(12, 10), classes=("a", "b", "c"))
    (src / "b" / "broken.png").write_bytes(b"not a png")
    cfg = DataConfig(source=str(src), resolution=8, on_bad_image="skip", cache=cache)
    pooled = load_dataset(cfg)
    monkeypatch.setattr(folder_mod, "PROCESS_MIN", 10**9)  # this process alone
    alone = load_dataset(DataConfig(source=str(src), resolution=8, on_bad_image="skip", cache=False))
    assert len(pooled) == 600 and pooled.skipped == 1 and pooled.skipped_files == ["b/broken.png"]
    assert torch.equal(pooled.x, alone.x) and torch.equal(pooled.labels, alone.labels)
