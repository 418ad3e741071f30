"""Shared settings of the CLI tests: output that does not depend on the terminal."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich (typer's error panels, tables) wraps to ``COLUMNS``, else to the terminal's width or
    80 columns: a message containing pytest's temp path then broke across lines at a place that
    depended on the path's length (``does not`` / ``exist``), so assertions on it passed or failed
    with the machine. 1000 columns keeps every message on one line."""
    monkeypatch.setenv("COLUMNS", "1000")

