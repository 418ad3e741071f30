"""Make installed packages look missing, to test the paths users without an extra meet.

``hide_modules(monkeypatch, "rich", "matplotlib")`` puts an import hook first on
``sys.meta_path`` that raises ``ModuleNotFoundError`` for those top-level packages, and drops
their cached modules; ``monkeypatch`` restores both after the test.
"""

from __future__ import annotations

import importlib.abc
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

import pytest


class _Hide(importlib.abc.MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, name: str, path: Any = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def hide_modules(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    monkeypatch.setattr(sys, "meta_path", [_Hide(set(names)), *sys.meta_path])
    for module in list(sys.modules):
        if module.split(".")[0] in names:
            monkeypatch.delitem(sys.modules, module)
