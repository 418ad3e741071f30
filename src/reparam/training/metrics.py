"""Metrics as JSON lines (``metrics.jsonl``), one object per logged step, safe to append to
across resumes, with a CSV copy (``metrics.csv``) and optionally TensorBoard event files.

A line torn by a crash mid-write (the last line, not valid JSON) is dropped with a warning."""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path
from typing import Any

from reparam._optional import require

METRICS_FILE = "metrics.jsonl"  # the name every ``reparam train`` command logs to in its folder
CSV_FILE = "metrics.csv"


class MetricsLog:
    """Append-only JSON-lines log. On resume, :meth:`truncate_after` drops lines written after
    the checkpoint being resumed, so the log matches an uninterrupted run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as stream:
            stream.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """The records; a last line that is not JSON (torn by a crash) is dropped with a warning."""
        if not self.path.is_file():
            return []
        lines = [line for line in self.path.read_text().splitlines() if line.strip()]
        records = []
        for number, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number < len(lines):
                    raise ValueError(
                        f"{self.path} line {number} is not JSON; the log is damaged beyond its last "
                        "line: fix or delete that line."
                    ) from None
                warnings.warn(
                    f"{self.path}: dropped a torn last line (a crash mid-write): {line[:60]!r}",
                    stacklevel=2,
                )
        return records

    def truncate_after(self, step: int, key: str = "step") -> None:
        kept = [r for r in self.read() if r.get(key, 0) <= step]
        self.rewrite(kept)

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text("".join(json.dumps(r) + "\n" for r in records))
        os.replace(temporary, self.path)


def write_csv(records: list[dict[str, Any]], path: str | Path) -> Path:
    """The records as CSV: one column per key seen (first-seen order), empty where absent."""
    path = Path(path)
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns), restval="")
        writer.writeheader()
        writer.writerows(records)
    os.replace(temporary, path)
    return path


class TensorBoardLog:
    """Scalars to TensorBoard event files in ``folder`` (``torch.utils.tensorboard``; needs the
    ``tensorboard`` package: ``pip install 'reparam[tensorboard]'``)."""

    def __init__(self, folder: str | Path, purge_step: int | None = None) -> None:
        require("tensorboard", extra="tensorboard", feature="--tensorboard logs")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder), purge_step=purge_step)

    def write(self, record: dict[str, Any], key: str = "step") -> None:
        step = int(record[key])
        for name, value in record.items():
            if name != key and isinstance(value, int | float):
                self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
