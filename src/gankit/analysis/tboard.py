"""TensorBoard, when `log.tensorboard=true`: the metrics.jsonl scalars and the sample grids, in
RUN/tensorboard/ (an optional extra: pip install "gankit[tensorboard]")."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

SKIP = {"step", "images", "event", "dataset_size"}


def check_available() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError('log.tensorboard: needs the tensorboard package: pip install "gankit[tensorboard]"') from None


class Board:
    def __init__(self, folder: Path):
        """Event files in `folder` (a run's RUN/tensorboard/)."""
        check_available()
        from torch.utils.tensorboard import SummaryWriter

        self.w = SummaryWriter(str(folder), flush_secs=10)

    def scalars(self, rec: dict[str, Any]) -> None:
        step = int(rec.get("step", 0))
        for k, v in rec.items():
            if k not in SKIP and isinstance(v, (int, float)) and not isinstance(v, bool):
                group = "eval" if "images_per_s" not in rec else "train"
                self.w.add_scalar(f"{group}/{k}", v, step)

    def image(self, tag: str, path: Path, step: int) -> None:
        from PIL import Image

        arr = np.asarray(Image.open(path).convert("RGB"))
        self.w.add_image(tag, arr, step, dataformats="HWC")

    def close(self) -> None:
        self.w.close()
