"""A GAN and a VAE on the same data, trained for the same time and measured the same way.

    python examples/gan_vs_vae.py
"""
from _size import small, steps

import gankit

common = {"data": {"source": "mnist5k", "resolution": small(32, 16)}, "model": {"width": small(64, 8)},
          "train": {"steps": steps(2000), "sample_every": steps(500), "checkpoint_every": steps(1000)}}
gan = gankit.train("configs/mnist_dcgan.yaml", out="runs/example_gvv/gan", **common)
vae = gankit.train("configs/mnist_vae.yaml", out="runs/example_gvv/vae", **common)
rows = gankit.compare([gan.folder, vae.folder], out="runs/example_gvv/compare", n=small(2000, 60), features="classifier")
for r in rows:
    m = r["metrics"]
    print(f"{r['run']:>4}: FID {m['fid']:.2f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}")
print("side by side: runs/example_gvv/compare/compare.html")
