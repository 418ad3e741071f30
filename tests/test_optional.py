"""Optional dependencies: a missing extra fails with one line naming the install command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hidden_modules import hide_modules

from reparam._optional import MissingExtraError, pyplot, require


def test_require_returns_the_module() -> None:
    assert require("json", extra="none") is sys.modules["json"]


def test_require_names_the_extra_and_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_modules(monkeypatch, "sklearn")
    with pytest.raises(MissingExtraError) as info:
        require("sklearn.datasets", extra="data", feature="the digits data set")
    assert str(info.value) == "the digits data set needs scikit-learn: pip install 'reparam[data]'"
    assert info.value.extra == "data" and info.value.name == "sklearn"
    assert isinstance(info.value, ImportError)


def test_require_keeps_errors_from_inside_an_installed_package() -> None:
    # A missing submodule of an installed package is a bug or a broken install, not a missing
    # extra: it propagates unchanged.
    with pytest.raises(ModuleNotFoundError) as info:
        require("json.no_such_module", extra="none")
    assert not isinstance(info.value, MissingExtraError)


def test_pyplot_without_matplotlib_names_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_modules(monkeypatch, "matplotlib")
    with pytest.raises(MissingExtraError, match=r"plotting needs matplotlib: pip install 'reparam\[plots\]'"):
        pyplot()


def test_data_sets_without_sklearn_name_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from reparam.data import digits

    hide_modules(monkeypatch, "sklearn")
    with pytest.raises(MissingExtraError, match=r"pip install 'reparam\[data\]'"):
        digits()


def _run(*args: str, hide: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import importlib.abc, runpy, sys\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {hide.split(',')!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        f"sys.argv = ['reparam', *{list(args)!r}]\n"
        "runpy.run_module('reparam', run_name='__main__')\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_command_line_without_cli_extra_prints_one_line() -> None:
    done = _run("--help", hide="typer,rich")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "reparam: the reparam command line needs typer: pip install 'reparam[cli]'\n"


def test_command_without_plots_extra_prints_one_line(tmp_path: Path) -> None:
    done = _run("train", "bnn", "--epochs", "1", "--out", str(tmp_path / "run"), hide="matplotlib")
    assert done.returncode == 2  # a usage error, like every user error of the train commands
    assert done.stderr.count("\n") == 1 and "pip install 'reparam[plots]'" in done.stderr, done.stderr
    assert "--no-plots" in done.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written
