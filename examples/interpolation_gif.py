"""Walk through latent space: slerp between seeded latents, saved as a GIF.

    python examples/interpolation_gif.py [RUN_OR_EXPORT]     # default: trains a small digits run first
"""
import sys

from _size import small, steps
from PIL import Image

import gankit

if len(sys.argv) > 1:
    g = gankit.load(sys.argv[1])
else:
    g = gankit.train("configs/digits.yaml", out="runs/example_walk", train={"steps": steps(1500)},
                     model={"width": small(32, 8)}).generator()
frames = []
for seed in range(small(4, 2)):  # each leg: one seeded latent to the next
    walk = g.interpolate(steps=small(16, 3), seed=seed)  # uint8 [steps, H, W, C]
    frames += [Image.fromarray(im.squeeze(-1) if im.shape[-1] == 1 else im).resize((128, 128), Image.Resampling.NEAREST) for im in walk]
frames[0].save("runs/walk.gif", save_all=True, append_images=frames[1:], duration=80, loop=0)
print(f"{len(frames)} frames in runs/walk.gif")
