"""Metrics as JSON lines, one object per logged step; safe to append to across resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"  # the name every ``reparam train`` command logs to in its folder


class MetricsLog:
    """Append-only JSON-lines log. On resume, :meth:`truncate_after` drops lines written after
    the checkpoint being resumed, so the log matches an uninterrupted run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as stream:
            stream.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        with self.path.open() as stream:
            return [json.loads(line) for line in stream if line.strip()]

    def truncate_after(self, step: int, key: str = "step") -> None:
        kept = [r for r in self.read() if r.get(key, 0) <= step]
        with self.path.open("w") as stream:
            stream.writelines(json.dumps(r) + "\n" for r in kept)
