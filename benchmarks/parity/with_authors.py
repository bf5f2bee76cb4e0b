"""Run any gankit command with the authors' R3GAN networks registered as the architecture `r3gan_authors`.

    .venv/bin/python benchmarks/parity/with_authors.py --ref PATH/TO/R3GAN train CONFIG model.arch=r3gan_authors data.channels=3 ...
    .venv/bin/python benchmarks/parity/with_authors.py --ref PATH/TO/R3GAN compare RUN_A RUN_B ...

So a whole recipe (its schedule, precision, EMA, lazy penalties, time budget) can be trained and
evaluated with their networks in place of gankit's, through the same commands. The networks are
built from PATH (a checkout of brownvc/R3GAN) at the widths of `r3gan.py` ([128, 128, 64, 32], one
block per stage, 32x32, RGB output), as in `r3gan_loop.py`; nothing of theirs is copied here.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from r3gan import reference  # noqa: E402  (this folder's harness)
from r3gan_loop import register_authors  # noqa: E402

from gankit.cli import main  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "--ref":
        sys.exit("usage: with_authors.py --ref PATH/TO/R3GAN COMMAND [ARGS...]")
    nets, _ = reference(Path(sys.argv[2]))
    register_authors(nets)
    sys.exit(main(sys.argv[3:]))
