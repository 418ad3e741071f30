"""Optional dependencies: import them lazily and name the extra that installs them.

``pip install reparam`` brings torch and numpy only; the command line, plots and data sets need
extras (``cli``, ``plots``, ``data``, ``rl``). Every import of an optional package goes through
:func:`require`, so a missing one fails with the install command instead of a bare
``No module named ...``.

Example:
    >>> plt = pyplot("plotting")  # doctest: +SKIP
    >>> datasets = require("sklearn.datasets", extra="data", feature="the digits data set")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: pip's name for a module whose distribution is spelled differently.
_DISTRIBUTIONS = {"sklearn": "scikit-learn"}


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency is not installed. ``extra`` names the ``reparam[...]`` extra
    that installs it; the message is the one line to show a user."""

    def __init__(self, message: str, *, name: str, extra: str) -> None:
        super().__init__(message, name=name)
        self.extra = extra


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"matplotlib"``, ``"sklearn.datasets"``) or raise
    :class:`MissingExtraError` naming ``pip install 'reparam[<extra>]'``.

    Args:
        module: the dotted module to import.
        extra: the extra in ``pyproject.toml`` that installs its package.
        feature: what needs it, for the message (default: ``"this feature"``).

    Only a missing *top-level* package is translated; an import error raised inside an
    installed package (a broken install) propagates unchanged.
    """
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != top:
            raise
        package = _DISTRIBUTIONS.get(top, top)
        message = f"{feature or 'this feature'} needs {package}: pip install 'reparam[{extra}]'"
        raise MissingExtraError(message, name=top, extra=extra) from None


def pyplot(feature: str = "plotting") -> ModuleType:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only, no window), or
    :class:`MissingExtraError` naming the ``plots`` extra."""
    matplotlib = require("matplotlib", extra="plots", feature=feature)
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")
