"""Without the optional extras, ``import reparam.demo`` still works and running the demo (or a
diagnostics renderer) names the extra to install instead of failing with a bare import error."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hidden_modules import hide_modules

from reparam._optional import MissingExtraError
from reparam.diagnostics.compare import CompareTable
from reparam.diagnostics.curves import VarianceCurves


def _fresh_demo(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for module in [m for m in sys.modules if m == "reparam.demo" or m.startswith("reparam.demo.")]:
        monkeypatch.delitem(sys.modules, module)
    return importlib.import_module("reparam.demo")


def test_demo_imports_without_rich_matplotlib_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_modules(monkeypatch, "rich", "matplotlib", "sklearn")
    demo = _fresh_demo(monkeypatch)
    assert "rich" not in sys.modules
    with pytest.raises(MissingExtraError, match=r"pip install 'reparam\[cli\]'") as info:
        demo.run_demo(Path("unused"))
    assert info.value.extra == "cli"


def test_compare_to_rich_without_rich_names_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_modules(monkeypatch, "rich")
    with pytest.raises(MissingExtraError, match=r"CompareTable.to_rich needs rich") as info:
        CompareTable(rows=[], stats={}).to_rich()
    assert info.value.extra == "cli"


def test_curves_plot_without_matplotlib_names_plots(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hide_modules(monkeypatch, "matplotlib")
    with pytest.raises(MissingExtraError, match=r"pip install 'reparam\[plots\]'") as info:
        VarianceCurves(points=[]).plot(tmp_path / "curves.png")
    assert info.value.extra == "plots"
