"""Progress display with a live text field (loss, ELBO, ...): a rich progress bar when rich is
installed (the ``cli`` extra), else plain lines on stderr, so the library runs on torch and
numpy alone."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from rich.console import Console


class ProgressBar(Protocol):
    """What training loops use of a progress display (a subset of ``rich.progress.Progress``)."""

    def __enter__(self) -> ProgressBar: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None: ...

    def add_task(
        self, description: str, *, total: float | None = ..., completed: int = ..., **fields: Any
    ) -> Any:
        """Start a task; returns its id for :meth:`update` and :meth:`advance`."""

    def update(
        self, task_id: Any, *, completed: float | None = ..., advance: float | None = ..., **fields: Any
    ) -> None:
        """Set a task's progress and its fields (``status="..."``)."""

    def advance(self, task_id: Any, advance: float = ...) -> None:
        """Add ``advance`` to a task's progress."""


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    status: str


class PlainProgress:
    """The fallback without rich: one line per task on ``stream`` (default stderr) at most
    every ``interval`` seconds, and once when the task completes. ``disable`` prints nothing.

    Example:
        >>> with PlainProgress() as bar:
        ...     task = bar.add_task("fit", total=100, status="")
        ...     bar.update(task, completed=100, status="ELBO -1.23")   # prints "fit 100/100 ELBO -1.23"
    """

    def __init__(self, disable: bool = False, interval: float = 5.0, stream: TextIO | None = None) -> None:
        self.disable = disable
        self.interval = interval
        self.stream = stream
        self._tasks: list[_Task] = []
        self._last = 0.0

    def __enter__(self) -> PlainProgress:
        self._last = time.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        return None

    def add_task(
        self, description: str, *, total: float | None = 100.0, completed: int = 0, **fields: Any
    ) -> int:
        self._tasks.append(_Task(description, total, completed, str(fields.get("status", ""))))
        return len(self._tasks) - 1

    def update(
        self, task_id: int, *, completed: float | None = None, advance: float | None = None, **fields: Any
    ) -> None:
        task = self._tasks[task_id]
        was_done = task.total is not None and task.completed >= task.total
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        if "status" in fields:
            task.status = str(fields["status"])
        done = task.total is not None and task.completed >= task.total
        now = time.monotonic()
        if (done and not was_done) or now - self._last >= self.interval:
            self._last = now
            self._print(task)

    def advance(self, task_id: int, advance: float = 1.0) -> None:
        self.update(task_id, advance=advance)

    def _print(self, task: _Task) -> None:
        if self.disable:
            return
        total = "?" if task.total is None else f"{task.total:g}"
        line = f"{task.description} {task.completed:g}/{total} {task.status}".rstrip()
        print(line, file=self.stream or sys.stderr, flush=True)


def training_progress(console: Console | None = None, disable: bool = False) -> ProgressBar:
    """Progress bar with ``status`` as a live field: ``progress.update(task, status="...")``.

    A ``rich.progress.Progress`` when rich is installed (the ``cli`` extra), else
    :class:`PlainProgress`.
    """
    try:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
    except ModuleNotFoundError as exc:
        if exc.name != "rich" and not (exc.name or "").startswith("rich."):
            raise
        return PlainProgress(disable=disable)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
    )
