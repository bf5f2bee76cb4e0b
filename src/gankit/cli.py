"""The `gankit` command: the parser gathered from `gankit.commands`, and user mistakes become one
clear line and exit status 2."""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from .commands import evaluate, export, info, latent, sample, train
from .errors import GankitError


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    ap = argparse.ArgumentParser(prog="gankit", description="Train, sample, evaluate and compare GANs.")
    ap.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for commands in (train, sample, export, latent, evaluate, info):
        commands.add(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may also come after options (`--out DIR train.steps=5`)
    if extra and args.cmd == "train" and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    warnings.filterwarnings("ignore", message=".*TypedStorage.*")
    try:
        threads = getattr(args, "threads", 0)
        if threads:
            if not 1 <= threads <= 1024:
                raise GankitError(f"--threads: must be 1..1024, got {threads}")
            import torch

            torch.set_num_threads(threads)
        return args.fn(args)
    except GankitError as e:
        from .training.loop import Interrupted

        print(f"gankit: error: {e}" if not isinstance(e, Interrupted) else f"gankit: {e}", file=sys.stderr)
        if type(e).__name__ == "PeerLost":  # dist.PeerLost: the run's own cleanup is done and its checkpoints are whole, but
            sys.stdout.flush()  # gloo's destructors may abort the interpreter's exit over a collective left pending with the
            sys.stderr.flush()  # dead peer ("terminate called without an active exception", status -6): leave at once
            os._exit(2)
        return 3 if isinstance(e, Interrupted) else 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
