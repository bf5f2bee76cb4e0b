"""Small data: 500 images, with and without differentiable augmentation (DiffAugment, adaptive p).

With so few images D memorises them and G's samples get worse after a while; augmenting every
image D sees (the same ops on real and generated ones) keeps D honest. gankit doctor names the
overfitting when it happens.

    python examples/small_data.py
"""
from _size import small, steps

import gankit

common = {"data": {"source": "mnist5k", "limit": small(500, 64), "resolution": small(32, 16)},
          "model": {"width": small(64, 8)},
          "train": {"steps": steps(3000), "batch_size": small(64, 16), "sample_every": steps(500), "checkpoint_every": steps(1000)}}
plain = gankit.train("configs/mnist_dcgan.yaml", out="runs/example_small/plain", **common)
augmented = gankit.train("configs/mnist_dcgan.yaml", out="runs/example_small/augmented",
                         augment={"policy": "color,translation,cutout", "adaptive": True, "p": 0.2}, **common)
for run in (plain, augmented):
    print(run.folder.name, "->", run.doctor().strip().splitlines()[-1])
