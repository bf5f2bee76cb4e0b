"""Milliseconds per sample of an exported generator: the sampler page in headless Chromium
(onnxruntime-web, wasm, one thread) next to PyTorch and Python onnxruntime on the CPU (one thread
each), side by side in one run.

For each batch size the rounds alternate the three engines; each figure is the median of
`--repeats` rounds, each round itself the median of 5 timed batches after a warm-up.

    make web && .venv/bin/python benchmarks/web_sampler.py runs/demo --batches 1 16 64 --repeats 5 [--screenshot docs/sampler.png]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gankit import load  # noqa: E402
from gankit.artefact.export import export  # noqa: E402
from gankit.web.server import make_server  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def median_ms(fn, times: int = 5) -> float:
    fn()
    out = []
    for _ in range(times):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", help="a run folder (the demo: runs/demo)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--screenshot", default=None, help="also save the page as a PNG (the README's: docs/sampler.png)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    import onnxruntime as ort
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp())
    folder = export(a.run, "web", tmp / "web")
    g = load(folder)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(folder / "generator.onnx"), opts, providers=["CPUExecutionProvider"])
    server = make_server({"/": folder})
    server.start()
    rows = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp / "profile"), executable_path=shutil.which("chromium"), headless=True, args=FLAGS)
        page = ctx.new_page()
        page.goto(server.url)
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=120_000)
        if a.screenshot:
            page.set_viewport_size({"width": 1100, "height": 860})
            page.screenshot(path=a.screenshot, full_page=True)
        for b in a.batches:
            z = g.latents(b, seed=1)
            y = torch.zeros(b, dtype=torch.long) if g.num_classes else None
            feeds = {"z": z.numpy(), **({"y": torch.eye(g.num_classes)[y].numpy()} if g.num_classes else {})}
            res: dict[str, list[float]] = {"page": [], "torch": [], "ort": []}
            for _ in range(a.repeats):
                res["page"].append(page.evaluate(f"window.gankit.api.bench({b}, 5)"))
                res["torch"].append(median_ms(lambda: g.generate(z, y)))
                res["ort"].append(median_ms(lambda: sess.run(None, feeds)))
            rows.append((b, *(statistics.median(res[k]) / b for k in ("page", "torch", "ort"))))
        ctx.close()
    server.shutdown()
    print(f"generator: {g.meta['arch']} from {a.run}, {tuple(g.meta['output']['shape'])}, "
          f"{sum(p.numel() for p in g.net.parameters()) / 1e6:.2f}M parameters; one thread everywhere; "
          f"medians of {a.repeats} rounds")
    print("| batch | page (wasm) ms/sample | PyTorch CPU ms/sample | onnxruntime CPU ms/sample | page / PyTorch |")
    print("|---|---|---|---|---|")
    for b, pg, pt, ox in rows:
        print(f"| {b} | {pg:.2f} | {pt:.2f} | {ox:.2f} | {pg / pt:.2f}x |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
