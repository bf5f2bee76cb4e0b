"""Class-conditional generation: train on labelled digits, then sample one class, and blend two.

    python examples/conditional.py
"""
import torch
from _size import small, steps

import gankit

run = gankit.train("configs/mnist_conditional.yaml", out="runs/example_conditional",
                   train={"steps": steps(2000), "sample_every": steps(500), "checkpoint_every": steps(1000)},
                   model={"width": small(64, 8)}, data={"resolution": small(32, 16)})
g = run.generator()
print("classes:", ", ".join(g.class_names))
sevens = g.sample(16, seed=0, label=7)  # uint8 [16, H, W, 1], all of class 7
g.grid(16, seed=0, label="7").save("runs/example_conditional/sevens.png")  # a class by its name works too
# class weights instead of a label: halfway between a 1 and a 7, for the same latents
z = g.latents(8, seed=1)
y = torch.zeros(8, g.num_classes)
y[:, 1], y[:, 7] = 0.5, 0.5
blend = g.generate(z, y)  # images in [-1, 1], [8, 1, H, W]
print(f"{len(sevens)} sevens in runs/example_conditional/sevens.png; blended batch {tuple(blend.shape)}")
