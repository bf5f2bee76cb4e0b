"""A run folder: every file a training run writes, named here once. Training writes through it; the
report, doctor, eval, serve, export and the API read through it.

    RUN/config.yaml        the config the run trains with (rewritten when a rollback's remedy changes it)
    RUN/run.json           what the run is: data, networks and their sizes, processes, device
    RUN/metrics.jsonl      a record per log interval, evaluations during training, rollback events
    RUN/health.jsonl       the health monitor's findings and what was done about each
    RUN/snapshots.jsonl    2D runs: snapshots of the game for the live view
    RUN/checkpoints/       ckpt_XXXXXXXX.pt (`checkpoint.py` reads and writes them)
    RUN/samples/           step_XXXXXX.png fixed-seed grids, real.png, recon_XXXXXX.png (VAE)
    RUN/directions/        directions.json and strips_METHOD.png (semantic directions of G_ema)
    RUN/eval.json          `gankit eval`'s results, one entry appended per evaluation
    RUN/evaluations/       `gankit compare`'s evaluation of a checkpoint, per settings (reused by a later compare)
    RUN/report.html        the report, one offline file
    RUN/tensorboard/       TensorBoard's event files (log.tensorboard)
    RUN/sampler/           the sampler page `gankit serve` exports (again after a newer checkpoint)
    RUN/.lock              held by the one trainer writing the folder (`runlock.py`)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .jsonl import append_jsonl, truncate_jsonl
from .paths import write_atomic


def grid_step(path: Path) -> int:
    """The step in a grid's name (step_000120.png -> 120); -1 for a name that holds none."""
    try:
        return int(path.stem.rsplit("_", 1)[1])
    except (IndexError, ValueError):
        return -1


class RunFolder:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.root)!r})"

    # --- where things are ---
    config = property(lambda self: self.root / "config.yaml")
    info = property(lambda self: self.root / "run.json")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    health = property(lambda self: self.root / "health.jsonl")
    snapshots = property(lambda self: self.root / "snapshots.jsonl")
    checkpoints = property(lambda self: self.root / "checkpoints")
    samples = property(lambda self: self.root / "samples")
    directions = property(lambda self: self.root / "directions")
    eval_results = property(lambda self: self.root / "eval.json")
    compare_cache = property(lambda self: self.root / "evaluations")
    report = property(lambda self: self.root / "report.html")
    tensorboard = property(lambda self: self.root / "tensorboard")
    sampler = property(lambda self: self.root / "sampler")
    lock = property(lambda self: self.root / ".lock")
    real_grid = property(lambda self: self.samples / "real.png")
    # what the live view watches: a change to any of these is a change to the report
    WATCHED = ("metrics.jsonl", "health.jsonl", "snapshots.jsonl", "eval.json", "config.yaml", "directions/directions.json")

    def grid(self, step: int) -> Path:
        return self.samples / f"step_{step:06d}.png"

    def reconstructions(self, step: int) -> Path:
        return self.samples / f"recon_{step:06d}.png"

    def grids(self) -> list[Path]:
        """The fixed-seed grids, oldest first."""
        return sorted(self.samples.glob("step_*.png"), key=grid_step) if self.samples.is_dir() else []

    def reconstruction_grids(self) -> list[Path]:
        return sorted(self.samples.glob("recon_*.png"), key=grid_step) if self.samples.is_dir() else []

    def strips(self) -> list[Path]:
        return sorted(self.directions.glob("strips_*.png")) if self.directions.is_dir() else []

    def looks_like_a_run(self) -> bool:
        """A folder that a training run wrote (a config, metrics or checkpoints)."""
        return self.config.is_file() or self.metrics.is_file() or self.checkpoints.is_dir()

    @staticmethod
    def of_checkpoint(path: str | Path) -> RunFolder:
        """The run folder a checkpoint file sits in (RUN/checkpoints/ckpt_*.pt), else the file's own folder."""
        path = Path(path)
        return RunFolder(path.parent.parent if RunFolder.holds_checkpoint(path) else path.parent)

    @staticmethod
    def holds_checkpoint(path: str | Path) -> bool:
        """Whether checkpoint file `path` sits in a run folder's checkpoints/."""
        path = Path(path)
        return RunFolder(path.parent.parent).checkpoints == path.parent

    # --- what training writes ---
    def write_config(self, text: str) -> None:
        write_atomic(self.config, text)

    def write_info(self, info: dict[str, Any]) -> None:
        write_atomic(self.info, json.dumps(info, indent=1))

    def log(self, record: dict[str, Any]) -> None:
        append_jsonl(self.metrics, record)

    def log_finding(self, finding: dict[str, Any]) -> None:
        append_jsonl(self.health, finding)

    def log_snapshot(self, record: dict[str, Any]) -> None:
        append_jsonl(self.snapshots, record)

    def add_evaluation(self, result: dict[str, Any]) -> Path:
        """Append `gankit eval`'s result to eval.json (an unreadable file starts a new history)."""
        history = []
        if self.eval_results.is_file():
            try:
                history = json.loads(self.eval_results.read_text()).get("evaluations", [])
            except (json.JSONDecodeError, AttributeError):
                history = []
        return write_atomic(self.eval_results, json.dumps({"evaluations": [*history, result]}, indent=1))

    def latest_evaluation(self) -> dict[str, Any] | None:
        """The newest entry of eval.json; None when there is none; a ValueError when it cannot be read."""
        if not self.eval_results.is_file():
            return None
        try:
            return json.loads(self.eval_results.read_text())["evaluations"][-1]
        except (OSError, json.JSONDecodeError, KeyError, IndexError, TypeError) as e:
            raise ValueError(f"{self.eval_results.name}: not readable ({type(e).__name__})") from None

    def forget_after(self, step: int) -> None:
        """Drop the records of work after `step` (a resume or a rollback redoes it)."""
        truncate_jsonl(self.metrics, step)
        truncate_jsonl(self.snapshots, step)
