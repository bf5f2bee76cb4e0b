"""Random and truncated bytes behind every supported extension: a clear DataError, never a traceback."""
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.errors import DataError

EXTS = [".png", ".jpg", ".gif", ".bmp", ".webp", ".npz", ".npy", ".csv", "-images-idx3-ubyte"]


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L").save(buf, "PNG")
    return buf.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=300), ext=st.sampled_from(EXTS), cut=st.integers(0, 200), from_png=st.booleans())
def test_hostile_files_fail_clearly(tmp_path_factory, data, ext, cut, from_png):
    folder = tmp_path_factory.mktemp("hostile")
    payload = _png_bytes()[:cut] if from_png else data
    target = folder / f"x{ext}"
    target.write_bytes(payload)
    source = folder if ext in (".png", ".jpg", ".gif", ".bmp", ".webp") else target
    try:
        ds = load_dataset(DataConfig(source=str(source)))
    except DataError as e:
        msg = str(e)
        assert "\n" not in msg and (target.name in msg or str(folder) in msg), msg
    else:  # a few random byte strings are valid files (e.g. an empty-ish CSV of numbers)
        assert len(ds) >= 1


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    import pytest

    with pytest.raises(DataError, match="decompression-bomb"):
        load_dataset(DataConfig(source=str(tmp_path)))
