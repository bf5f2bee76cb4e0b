"""What gankit has (`datasets`, `archs`), what a run says (`doctor`, `report`) and how fast this
machine trains (`bench`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import GankitError
from ..paths import check_output_file
from ..runfolder import RunFolder


def add(sub) -> None:
    d = sub.add_parser("datasets", help="list the built-in data sources")
    d.set_defaults(fn=datasets)
    m = sub.add_parser("archs", help="list the architectures: data kind, resolutions, conditioning, options")
    m.set_defaults(fn=archs)

    h = sub.add_parser("doctor", help="diagnose a finished or running run: findings, evidence, suggestions, verdict")
    h.add_argument("run", help="a run folder")
    h.set_defaults(fn=doctor)

    r = sub.add_parser("report", help="write RUN/report.html: curves, grids over time, health, evaluation (one offline file)")
    r.add_argument("run", help="a run folder")
    r.set_defaults(fn=report)

    b = sub.add_parser("bench", help="training speed: a plain PyTorch DCGAN step against gankit's step and loop")
    b.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    b.add_argument("--shapes", nargs="+", default=["64x64x3", "32x32x3", "32x32x1"], help="RESxRESxCHANNELS")
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--repeats", type=int, default=3, help="measurements per figure (the median is reported)")
    b.add_argument("--out", default=None, help="also write the Markdown table to this file (or to bench.md in this folder)")
    b.set_defaults(fn=bench)


def datasets(a: argparse.Namespace) -> int:
    from ..data import describe_sources

    rows = describe_sources()
    w = max(len(r[0]) for r in rows)
    print(f"{'name':<{w}}  {'size':>7}  {'shape':<8}  description")
    for name, size, shape, desc in rows:
        print(f"{name:<{w}}  {size:>7}  {shape:<8}  {desc}")
    return 0


def archs(a: argparse.Namespace) -> int:
    from ..models import describe_archs

    rows = [("name", "data", "resolutions", "conditional", "options of its own"), *describe_archs()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(f"{v:<{w}}" for v, w in zip(r, widths)) + "  " + r[4])
    return 0


def doctor(a: argparse.Namespace) -> int:
    from ..analysis.health import doctor

    text, _ = doctor(Path(a.run))
    print(text)
    return 0


def report(a: argparse.Namespace) -> int:
    from ..analysis.report import write_report

    run = RunFolder(a.run)
    if not run.config.is_file() and not run.metrics.is_file():
        raise GankitError(f"{run.root}: not a run folder (no config.yaml or metrics.jsonl)")
    check_output_file(run.report, flag="the run folder")
    print(f"wrote {write_report(run.root)}")
    return 0


def bench(a: argparse.Namespace) -> int:
    from ..api.bench import SHAPES, run_bench

    bad = [x for x in a.shapes if x not in SHAPES]
    if bad:
        raise GankitError(f"--shapes: unknown {bad}; choose from {', '.join(SHAPES)}")
    for name, v in (("--batch", a.batch), ("--repeats", a.repeats)):
        if v < 1:
            raise GankitError(f"{name}: must be at least 1, got {v}")
    out = Path(a.out) if a.out else None
    if out is not None:  # checked before ten minutes of measuring, not after
        if out.is_dir():
            out = out / "bench.md"
        check_output_file(out)
    text = run_bench(a.device, tuple(a.shapes), a.batch, a.repeats)  # prints as it goes
    if out is not None:
        out.write_text(text + "\n")
    return 0
