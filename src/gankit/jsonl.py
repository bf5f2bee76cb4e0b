"""JSON-lines files (metrics.jsonl): append a record, read them back, drop the records of work a resume will redo."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _finite(v: Any) -> Any:
    """JSON has no NaN or Infinity: they are written as null."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps({k: _finite(v) for k, v in record.items()}) + "\n")


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop lines logged after `step` (they belong to work that a resume will redo)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue
    path.write_text("".join(k + "\n" for k in keep))


def read_jsonl(path: Path, notes: list[str] | None = None) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (none when it is missing). A damaged line (one being written
    right now, or cut short by a crash) is left out, and said in `notes` when given."""
    if not path.is_file():
        return []
    out, bad = [], []
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        if notes is not None:
            notes.append(f"{path.name}: cannot be read ({e.strerror or e})")
        return []
    lines = text.split("\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad.append(i)
            continue
        if isinstance(rec, dict):
            out.append(rec)
        else:
            bad.append(i)
    if bad and notes is not None:
        last_line = max(i for i, line in enumerate(lines, 1) if line.strip())
        last = " (the last line: a write cut short?)" if bad[-1] == last_line else ""
        notes.append(f"{path.name}: {len(bad)} line(s) not readable as JSON records, left out: line "
                     f"{', '.join(map(str, bad[:8]))}{' ...' if len(bad) > 8 else ''}{last}")
    return out
