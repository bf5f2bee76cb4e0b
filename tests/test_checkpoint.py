import os
import pickle

import pytest
import torch

from gankit.checkpoint import atomic_save, latest_valid, list_checkpoints, load_checkpoint, save_checkpoint
from gankit.errors import CheckpointError


class _Gadget:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this would create the marker file
        return (open, (self.marker, "w"))


def _state(step):
    return {"config": {}, "G_ema": {"w": torch.full((2,), float(step))}, "step": step}


def test_pickle_gadget_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "ckpt_00000001.pt"
    with open(path, "wb") as f:
        torch.save({"config": {}, "G_ema": {}, "evil": _Gadget(str(marker))}, f)
    with pytest.raises(CheckpointError, match="refused for safety"):
        load_checkpoint(path)
    assert not marker.exists()
    with open(path, "wb") as f:  # and a plain pickle that is not a torch file at all
        pickle.dump(_Gadget(str(marker)), f)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


def test_keep_k_newest_and_skip_broken(tmp_path, capsys):
    for step in range(1, 7):
        save_checkpoint(_state(step), tmp_path, step, keep=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_00000006.pt", "ckpt_00000005.pt", "ckpt_00000004.pt"]
    newest = list_checkpoints(tmp_path)[0]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    (tmp_path / "ckpt_00000007.pt").write_bytes(b"\0" * 4096)  # zeroed
    path, state = latest_valid(tmp_path)
    assert path.name == "ckpt_00000005.pt" and state["step"] == 5
    # one plain line per skipped file, no Python warning with a source line
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(x.startswith("gankit: warning: skipping ") for x in lines)
    assert "ckpt_00000007.pt: not a gankit checkpoint (binary data" in lines[0]
    assert "ckpt_00000006.pt" in lines[1] and "truncated or damaged" in lines[1]
    with pytest.raises(CheckpointError, match="ckpt_00000006.pt"):
        load_checkpoint(newest)


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "ckpt_00000001.pt"
    atomic_save(_state(1), path)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_save(_state(2), path)
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_00000001.pt"]


@pytest.mark.parametrize("payload, kind", [(b"\xff\xd8\xff\xe0" + b"\0" * 64, "a JPEG image"), (b"hello, not weights\n", "a text file"),
                                           (b"", "an empty file")])
def test_a_file_that_is_not_a_checkpoint_says_what_it_is(tmp_path, payload, kind):
    p = tmp_path / "photo.bin"
    p.write_bytes(payload)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: not a gankit checkpoint ({kind})") and "\n" not in msg and "safety" not in msg
