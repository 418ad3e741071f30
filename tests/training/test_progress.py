"""The progress display: rich when installed, plain stderr lines otherwise."""

from __future__ import annotations

import io

import pytest
from hidden_modules import hide_modules

from reparam.training.progress import PlainProgress, training_progress


def test_plain_progress_prints_on_completion_and_not_when_disabled() -> None:
    stream = io.StringIO()
    with PlainProgress(interval=3600.0, stream=stream) as bar:
        task = bar.add_task("fit", total=4, status="")
        bar.update(task, completed=2, status="ELBO -3")  # within the interval: no line
        bar.advance(task, 2)  # completes: one line
        bar.update(task, completed=4, status="ELBO -1")  # already complete: no second line
    assert stream.getvalue() == "fit 4/4 ELBO -3\n"

    quiet = io.StringIO()
    with PlainProgress(disable=True, interval=0.0, stream=quiet) as bar:
        task = bar.add_task("fit", total=2, status="")
        bar.update(task, completed=2, status="done")
    assert quiet.getvalue() == ""


def test_plain_progress_prints_every_interval() -> None:
    stream = io.StringIO()
    with PlainProgress(interval=0.0, stream=stream) as bar:
        task = bar.add_task("study", total=None, status="")
        bar.update(task, advance=1, status="a")
        bar.update(task, advance=1, status="b")
    assert stream.getvalue().splitlines() == ["study 1/? a", "study 2/? b"]


def test_training_progress_falls_back_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_modules(monkeypatch, "rich")
    assert isinstance(training_progress(disable=True), PlainProgress)


def test_training_progress_uses_rich_when_installed() -> None:
    progress = pytest.importorskip("rich.progress")
    assert isinstance(training_progress(disable=True), progress.Progress)
