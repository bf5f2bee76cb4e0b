"""An exported generator in another program: no gankit, no PyTorch, only numpy and onnxruntime.

    python examples/use_export.py [RUN]     # default: trains a small digits run first

`gankit export RUN --format onnx --out DIR` writes generator.onnx and generator.json; this script
reads them the way any other program would (pip install onnxruntime numpy pillow).
"""
import json
import subprocess
import sys
from pathlib import Path

run = sys.argv[1] if len(sys.argv) > 1 else None
if run is None:  # make something to export (this part uses gankit)
    from _size import small, steps

    import gankit

    run = gankit.train("configs/digits.yaml", out="runs/example_export/run", train={"steps": steps(1500)},
                       model={"width": small(32, 8)}, data={"resolution": 16}).folder
subprocess.run([sys.executable, "-m", "gankit", "export", str(run), "--format", "onnx", "--out", "runs/example_export/onnx"], check=True)

# --- from here on: a program that knows nothing of gankit -------------------------------------
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from PIL import Image  # noqa: E402

folder = Path("runs/example_export/onnx")
meta = json.loads((folder / "generator.json").read_text())
session = ort.InferenceSession(str(folder / "generator.onnx"), providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
z = rng.standard_normal((16, meta["z_dim"])).astype(np.float32)  # the latent prior: N(0, I)
feeds = {"z": z}
if meta["num_classes"]:
    feeds["y"] = np.eye(meta["num_classes"], dtype=np.float32)[np.arange(16) % meta["num_classes"]]  # one-hot class weights
images = session.run(None, feeds)[0]  # [16, C, H, W] in [-1, 1]
pixels = np.round((np.clip(images, -1, 1) + 1) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1)
c, h, w = meta["output"]["shape"]
grid = pixels.reshape(4, 4, h, w, c).transpose(0, 2, 1, 3, 4).reshape(4 * h, 4 * w, c)
Image.fromarray(grid.squeeze(-1) if c == 1 else grid).save("runs/example_export/grid.png")
print(f"16 samples of a {meta['arch']} trained {meta['step']} steps on {meta['data']['name']}: runs/example_export/grid.png")
