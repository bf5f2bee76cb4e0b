"""JSON-lines files (metrics.jsonl): append a record; drop the records of work a resume will redo."""
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
