"""Where a training run starts from: one resolver for the command line and the Python API.

`resolve(config, overrides, out, resume)` -> (config, run folder, start), where start is None (a new
run), "auto" (the loop continues the folder's run if it has one), or the checkpoint to resume as
(path, its state), read here once and handed to the loop:

- `resume` a checkpoint path: its run's config with the overrides; the run folder defaults to
  the checkpoint's run;
- `resume="auto"` with no config: the newest valid checkpoint in `out`, with its run's own config
  and the overrides; with no checkpoint there, overrides that name `data.source` start a run (as
  `gankit train key=value` does), anything else is refused (the built-in default data is never
  what a user resuming means);
- otherwise the config (a path, a nested dict, a `Config`, or None for the defaults) with the
  overrides; `resume="auto"` then continues the folder's run when it has a checkpoint (the loop
  looks), else starts it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checkpoint import latest_valid, load_checkpoint
from ..config import Config, load_config, make_config
from ..errors import GankitError
from ..runfolder import RunFolder

Start = tuple[Path, dict[str, Any]]  # a checkpoint and the state it holds


def _base(config: str | Path | dict[str, Any] | Config | None, overrides: list[str]) -> Config:
    if isinstance(config, Config):
        return make_config(config.to_dict(), overrides)
    if isinstance(config, dict):
        return make_config(config, overrides)
    return load_config(config, overrides)


def resolve(config: str | Path | dict[str, Any] | Config | None, overrides: list[str], out: str | Path | None,
            resume: str | None) -> tuple[Config, Path, str | Start | None]:
    if resume and resume != "auto":
        state = load_checkpoint(Path(resume))
        cfg = make_config(state["config"], overrides)
        return cfg, Path(out) if out else Path(resume).resolve().parent.parent, (Path(resume), state)
    if resume == "auto" and config is None:  # continue a run: its own config, from its newest checkpoint
        if not out:
            raise GankitError("--resume auto: name the run folder with --out (or give the config it was started with)")
        out = Path(out)
        found = latest_valid(RunFolder(out).checkpoints)
        if found is not None:
            return make_config(found[1]["config"], overrides), out, found  # read once: not looked for again
        if any(o.startswith("data.source=") for o in overrides):  # settings naming the data: a run from them
            return load_config(None, overrides), out, resume
        if overrides:
            raise GankitError(f"{out}: no checkpoint to resume; to start a run there, give its config before the "
                              f"settings (e.g. gankit train configs/folder64.yaml {' '.join(overrides)} --resume auto --out {out})")
        raise GankitError(f"{out}: no checkpoint to resume")
    if config is None and not overrides:
        raise GankitError("train: give a config, e.g. `gankit train configs/mnist_conditional.yaml` (see configs/), "
                          "or --resume auto --out RUN to continue a run")
    cfg = _base(config, overrides)
    if out is None:
        out = Path("runs") / (Path(config).stem if isinstance(config, (str, Path)) else Path(cfg.data.source).stem)
    return cfg, Path(out), resume
