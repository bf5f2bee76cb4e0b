"""`gankit export` (safetensors, ONNX, the web page) and `gankit serve` (a run's live report and
sampler, or an export's page, on loopback by default)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import GankitError
from ..runfolder import RunFolder


def add(sub) -> None:
    x = sub.add_parser("export", help="write the generator as safetensors, ONNX or the sampler web page")
    x.add_argument("target", help="a run folder or a checkpoint file")
    x.add_argument("--format", choices=["safetensors", "onnx", "web"], default="safetensors",
                   help="safetensors: weights + generator.json; onnx: also generator.onnx; web: also the sampler page")
    x.add_argument("--out", required=True, help="the export folder to write")
    x.add_argument("--device", default="cpu")
    x.set_defaults(fn=export)

    v = sub.add_parser("serve", help="serve a run's live report (and its sampler page), or an export's sampler page")
    v.add_argument("dir", help="a run folder (live report at /, sampler at /sampler/), or a web export folder")
    v.add_argument("--port", type=int, default=8000, help="0: any free port")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    v.set_defaults(fn=serve)


def export(a: argparse.Namespace) -> int:
    from ..artefact.export import export as write_export
    from ..artefact.exported import META

    out = write_export(a.target, a.format, Path(a.out), a.device)
    meta = json.loads((out / META).read_text())
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    size = sum((out / f).stat().st_size for f in files) / 2**20
    print(f"wrote {out}: {', '.join(files)} ({size:.1f} MiB; {meta['arch']}, step {meta['step']}, from {meta['source']})")
    if a.format == "web":
        print(f"open it with: gankit serve {out}")
    return 0


def serve(a: argparse.Namespace) -> int:
    from ..artefact.exported import is_export
    from ..web.server import make_server, projection_api, run_server, sampler_folder

    if not 0 <= a.port <= 65535:
        raise GankitError(f"--port: must be 0..65535, got {a.port}")
    target = Path(a.dir)
    if not target.is_dir():
        raise GankitError(f"{target}: no such folder (give an export folder or a run folder)")
    if is_export(target):
        folder = sampler_folder(target)
        server = make_server({"/": folder}, a.host, a.port)
        projection_api(server, lambda: folder)
        print(f"serving the sampler page of {target} at {server.url} (Ctrl-C to stop)", flush=True)
    else:
        if not RunFolder(target).config.is_file() and not RunFolder(target).checkpoints.is_dir():
            raise GankitError(f"{target}: neither an export folder (no generator.json) nor a run folder (no config.yaml)")
        server = run_server(target, a.host, a.port,
                            on_ready=lambda url: print(f"the sampler page is ready at {url}", flush=True))
        extra = f"; its sampler page at {server.url}sampler/ (being prepared)" if server.preparing is not None else ""
        print(f"serving the live report of {target} at {server.url}{extra} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
