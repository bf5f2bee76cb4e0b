"""What `gankit.train` does: configs from presets, dicts and keyword sections, and
the `Run` a training returns."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..runfolder import RunFolder


def _as_overrides(overrides: list[str] | dict[str, Any] | None, sections: dict[str, dict[str, Any]]) -> list[str]:
    out: list[str] = []
    if isinstance(overrides, dict):
        out += [f"{k}={_text(v)}" for k, v in overrides.items()]
    elif overrides:
        out += [str(o) for o in overrides]
    for section, values in sections.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: give the section's keys as a dict, e.g. {section}={{...}}")
        out += [f"{section}.{k}={_text(v)}" for k, v in values.items()]
    return out


def _text(v: Any) -> str:
    """A Python value as the YAML text an override holds."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_text(x) for x in v) + "]"
    return str(v)


@dataclass
class Run:
    """A run folder after `gankit.train`: its config, where it got to, and what it holds."""

    folder: Path
    config: Config
    step: int

    def metrics(self) -> list[dict[str, Any]]:
        """metrics.jsonl as a list of records (unreadable lines left out)."""
        from ..jsonl import read_jsonl

        return read_jsonl(RunFolder(self.folder).metrics)

    def generator(self, device: str = "cpu"):
        """G_ema of the newest checkpoint (`gankit.load(self.folder)`)."""
        from ..artefact.generator import load

        return load(self.folder, device)

    def doctor(self) -> str:
        """`gankit doctor`'s findings and verdict, as text."""
        from ..analysis.health import doctor

        return doctor(self.folder)[0]

    def report(self) -> Path:
        """Write and return report.html."""
        from ..analysis.report import write_report

        return write_report(self.folder)

    def export(self, out: str | Path, format: str = "safetensors", device: str = "cpu") -> Path:  # noqa: A002
        """Write the generator as an export folder: "safetensors", "onnx" or "web" (`gankit export`)."""
        from ..artefact.export import export

        return export(self.folder, format, Path(out), device)

    def info(self) -> dict[str, Any]:
        """run.json: the data and networks as training described them."""
        return json.loads(RunFolder(self.folder).info.read_text())


def train_run(source: str | Path | dict[str, Any] | Config | None, out: str | Path | None, overrides: list[str] | dict[str, Any] | None,
              resume: str | None, quiet: bool, sections: dict[str, dict[str, Any]]) -> Run:
    from ..training.loop import train
    from ..training.resume import resolve

    if source is None and resume is None:
        source = {}  # gankit.train() with nothing: the built-in defaults, as before
    cfg, folder, resume = resolve(source, _as_overrides(overrides, sections), out, resume)  # as the command line does
    p = train(cfg, folder, resume=resume, quiet=quiet)
    return Run(folder, p.cfg, p.step)
