"""Train on your own folder of images, then sample a grid.

    python examples/own_folder.py ~/pictures/cats       # any folder tree of PNG/JPEG/WebP/... files
    python examples/own_folder.py                        # no folder: writes one from built-in digits first

Images of any size and mode are resized (aspect kept, centre crop) to data.resolution; a file that
cannot be read is named and skipped (data.on_bad_image=skip) instead of stopping the run.
"""
import sys
from pathlib import Path

from _size import small, steps

import gankit


def demo_folder(path: Path) -> Path:
    """A folder of PNGs standing in for your own pictures: 300 mnist5k digits, one subfolder per class."""
    from PIL import Image

    from gankit.config import DataConfig
    from gankit.data import load_dataset

    ds = load_dataset(DataConfig(source="mnist5k"))
    for i in range(small(300, 40)):
        label = int(ds.labels[i])
        (path / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(ds.x[i, 0].numpy()).save(path / str(label) / f"{i:04d}.png")
    return path


folder = Path(sys.argv[1]) if len(sys.argv) > 1 else demo_folder(Path("runs/example_folder/images"))
run = gankit.train(
    "configs/folder64.yaml", out="runs/example_folder/run",
    data={"source": str(folder), "resolution": small(32, 16), "on_bad_image": "skip"},
    model={"width": small(64, 8)},
    train={"steps": steps(3000), "batch_size": small(64, 16), "sample_every": steps(500), "checkpoint_every": steps(1000)},
)
g = run.generator()
g.grid(64, seed=0).save("runs/example_folder/grid.png")
print(f"trained {run.step} steps; samples in runs/example_folder/grid.png; report in {run.folder / 'report.html'}")
