"""gankit: train, evaluate, compare and diagnose GANs, on a CPU or on GPUs.

The Python API, in a few names (each imports what it needs when first called, so that
`import gankit` is quick and has no side effects)::

    import gankit

    run = gankit.train("configs/digits.yaml", out="runs/digits", train={"steps": 500})
    run.report(); run.export("export/digits", format="onnx")
    g = gankit.load(run.folder)                  # or an export folder, or a checkpoint
    images = g.sample(16, seed=0)                # uint8 [16, H, W, C]
    scores = gankit.evaluate(run.folder, metrics=["fid", "pr"], n=2000, features="classifier")

Errors are `gankit.GankitError`s with one line naming the culprit, as on the command line.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import CheckpointError, ConfigError, DataError, GankitError

from .version import __version__

if TYPE_CHECKING:  # names for type checkers; imported lazily at run time
    from pathlib import Path

    from .config import Config
    from .artefact.generator import Generator
    from .api.run import Run

__all__ = [
    "__version__", "GankitError", "ConfigError", "DataError", "CheckpointError",
    "train", "load", "evaluate", "compare", "register_arch", "register_loss", "register_source",
    "Config", "Generator", "Run", "Loss",
]


def train(source: str | Path | dict[str, Any] | Config | None = None, out: str | Path | None = None,
          overrides: list[str] | dict[str, Any] | None = None, resume: str | None = None, quiet: bool = False,
          **sections: dict[str, Any]) -> Run:
    """Train into run folder `out` (default runs/<preset name>) from a preset path, a nested dict
    or a `Config`, then overrides: `"section.key=value"` strings, a `{"section.key": value}` dict,
    or keyword sections (`train={"steps": 500}`); an unknown key or a bad value raises a
    `ConfigError` naming it. `resume="auto"` continues the folder's run. Returns a `Run` (its
    folder, config, step, metrics, generator, report, export)."""
    from .api.run import train_run

    return train_run(source, out, overrides, resume, quiet, sections)


def load(path: str | Path, device: str = "cpu") -> Generator:
    """A trained generator from an export folder, a run folder or a checkpoint file.

    >>> g = gankit.load("runs/demo")            # or an export folder, or a checkpoint
    >>> images = g.sample(16, seed=0, label=3)  # uint8 [16, H, W, C]
    """
    from .artefact.generator import load as _load

    return _load(path, device)


def evaluate(target: str | Path, metrics: list[str] | tuple[str, ...] | None = None, n: int = 5000,
             features: str | None = None, real: str | None = None, seed: int = 0, inception: str | None = None,
             device: str = "cpu") -> dict[str, Any]:
    """Metrics of a run, checkpoint or export against real data (its own unless `real` names a
    source), as `gankit eval` computes them; the result holds a "provenance" entry. `metrics`: default
    fid, kid, pr, dc for a generator; l1, psnr, ssim, fid, kid for a translation run (its outputs
    against the targets of `real`'s pairs)."""
    from .analysis.evaluate import ALL, evaluate_run
    from .metrics.paired import PAIRED

    bad = [m for m in metrics or () if m not in ALL + PAIRED]
    if bad:
        raise GankitError(f"metrics: unknown {bad}; choose from {', '.join(ALL)} (generation) or {', '.join(PAIRED)} (translation)")
    return evaluate_run(target, list(metrics) if metrics else [], n, real, features, seed, inception, device,
                        default=("fid", "kid", "pr", "dc"))


def compare(runs: list[str | Path], out: str | Path, n: int = 5000, features: str | None = None, real: str | None = None,
            seed: int = 0, device: str = "cpu") -> list[dict[str, Any]]:
    """Evaluate several runs (or exports) identically; writes compare.md, .png, .json and .html
    into `out` and returns one row per run."""
    from pathlib import Path

    from .api.compare import compare_runs

    return compare_runs(list(runs), Path(out), n=n, seed=seed, real=real, features=features, device=device)


def register_arch(name: str, kind: str = "image", resolutions: tuple[int, ...] = ()):
    """Class decorator pair for a new architecture: `register_arch("tiny")((Generator, Discriminator))`.
    Both take a `gankit.models.Spec`; G is called as G(z, y) and D as D(x, y) (y: labels or None).
    `kind`: "image" or "points"; `resolutions`: the image sizes it supports (empty: any)."""
    from .models import register_arch as _register

    return _register(name, kind, resolutions)


def register_loss(name: str, d, g) -> None:
    """A new adversarial loss from D's logits: `d(real_logits, fake_logits)` (minimised by D) and
    `g(fake_logits)` (minimised by G); then `loss.name=<name>`."""
    from .losses import LOSSES, Loss

    LOSSES.register(name)(Loss(d=d, g=g))


def register_source(name: str, description: str, size: int, shape: tuple[int, ...], num_classes: int = 0):
    """Function decorator for a new data source: the function takes the `DataConfig` and returns a
    `gankit.data.Dataset`; then `data.source=<name>`."""
    from .data import _register

    return _register(name, description, size, shape, num_classes)


def __getattr__(name: str) -> Any:
    """`gankit.Loss`, `gankit.Config`, `gankit.Generator`, `gankit.Run`, on first use."""
    if name == "Loss":
        from .losses import Loss

        return Loss
    if name == "Config":
        from .config import Config

        return Config
    if name == "Generator":
        from .artefact.generator import Generator

        return Generator
    if name == "Run":
        from .api.run import Run

        return Run
    raise AttributeError(f"module 'gankit' has no attribute {name!r}")
