"""Loading a large image folder: the previous loader against today's (first run, and from the cache).

Writes the CIFAR-10 training set (../shared/data/cifar10) as a JPEG folder tree, class subfolders,
once; then loads it in fresh child processes, alternating the loaders in each round, and reports the
median wall time and the peak resident memory of each.

    .venv/bin/python benchmarks/folder_load.py --repeats 3 --resolutions 32 64

The previous loader is kept here (as it was until this benchmark was written) to measure against:
it decoded every file and held all of them before resizing and stacking.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10" / "cifar10_train.npz"

PREVIOUS = """
import numpy as np
from gankit.data.images import IMAGE_EXTS, decode_file, resize_crop, to_array

def previous_read_folder(root, resolution, channels):
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    tops = [p.relative_to(root).parts for p in files]
    class_names = sorted({t[0] for t in tops})
    index = {n: i for i, n in enumerate(class_names)}
    images, labels = [], []
    for p, t in zip(files, tops):
        images.append(decode_file(p))
        labels.append(index[t[0]])
    arrays = [to_array(resize_crop(im, resolution) if resolution else im, channels) for im in images]
    return np.stack(arrays), np.asarray(labels)
"""

CHILD = """
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
{body}
print(json.dumps({{"seconds": time.perf_counter() - t0, "n": n, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

BODIES = {
    "previous": PREVIOUS + "x, y = previous_read_folder(Path(SRC), RES, 3)\nn = len(x)",
    "now": ("from gankit.config import DataConfig\nfrom gankit.data import load_dataset\n"
            "ds = load_dataset(DataConfig(source=SRC, resolution=RES, channels=3))\nn = len(ds)"),
}


def write_tree(dest: Path) -> Path:
    if (dest / "done").exists():
        return dest
    d = np.load(CIFAR)
    names = [str(c) for c in d["classes"]]
    for i, (img, lab) in enumerate(zip(d["images"], d["labels"])):
        p = dest / names[lab] / f"{i:05d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(p, quality=95)
    (dest / "done").write_text("50000")
    return dest


def run(kind: str, src: Path, res: int, cache: Path) -> dict:
    code = CHILD.format(body=BODIES[kind].replace("SRC", repr(str(src))).replace("RES", str(res)))
    env = {"GANKIT_CACHE": str(cache), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--tree", default="/tmp/gankit-cifar10-jpeg")
    a = ap.parse_args()
    if not CIFAR.is_file():
        sys.exit(f"{CIFAR} is missing")
    src = write_tree(Path(a.tree))
    print("| resolution | loader | seconds (median) | peak memory MB (median) | runs |")
    print("|---|---|---|---|---|")
    for res in a.resolutions:
        rows: dict[str, list[dict]] = {"previous": [], "now, first run": [], "now, cached": []}
        for _ in range(a.repeats):
            with tempfile.TemporaryDirectory() as cache:
                rows["previous"].append(run("previous", src, res, Path(cache)))
                rows["now, first run"].append(run("now", src, res, Path(cache)))
                rows["now, cached"].append(run("now", src, res, Path(cache)))
        for name, rs in rows.items():
            assert all(r["n"] == 50000 for r in rs), rs
            s = statistics.median(r["seconds"] for r in rs)
            m = statistics.median(r["peak_mb"] for r in rs)
            each = " / ".join(f"{r['seconds']:.1f}" for r in rs)
            print(f"| {res} | {name} | {s:.1f} | {m:.0f} | {each} s |", flush=True)


if __name__ == "__main__":
    main()
