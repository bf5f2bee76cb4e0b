"""`gankit train`: a preset plus key=value overrides, resumed or checked only (--dry-run)."""
from __future__ import annotations

import argparse
import sys


def add(sub) -> None:
    t = sub.add_parser("train", help="train a model from a YAML preset plus key=value overrides")
    t.add_argument("config", nargs="?", help="a YAML preset (see configs/)")
    t.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. train.steps=500")
    t.add_argument("--out", help="run folder (default runs/<preset name>)")
    t.add_argument("--dry-run", action="store_true", help="run every check that needs no training, print the resolved config and exit")
    t.add_argument("--resume", help="auto (newest valid checkpoint in the run folder) or a checkpoint path")
    t.set_defaults(fn=train)


def train(a: argparse.Namespace) -> int:
    from ..config import dump_yaml
    from ..training.loop import train as run_training
    from ..training.resume import resolve

    overrides = list(a.overrides)
    config = a.config
    if config and "=" in config:  # `gankit train key=value` with no config file
        overrides.insert(0, config)
        config = None
    cfg, out, resume = resolve(config, overrides, a.out, a.resume)
    if a.dry_run:
        from ..training.preflight import check_config

        check_config(cfg)
        sys.stdout.write(dump_yaml(cfg))
        sys.stderr.write("dry run: all checks passed (config, data, model, output folder); nothing was trained\n")
        return 0
    run_training(cfg, out, resume=resume)
    return 0
