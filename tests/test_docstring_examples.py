"""Every docstring example in ``src/reparam`` runs (doctest), so none can rot.

Each module's examples run in a namespace with ``torch``, ``numpy as np`` and ``reparam as rp``
(what the examples assume, as a reader's session would have). Examples that need an optional
extra, a file or minutes of compute are marked ``# doctest: +SKIP`` where they stand.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest
import torch
from seeds import seeded

import reparam as rp


def _modules() -> list[str]:
    names = ["reparam"]
    for info in pkgutil.walk_packages(rp.__path__, "reparam."):
        if ".cli" in info.name:  # the command line imports typer at import time
            continue
        names.append(info.name)
    return sorted(names)


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, name) if t.examples and t.name.startswith(name)]


CASES = [(name, test.name) for name in _modules() for test in _examples(name)]


def test_there_are_examples() -> None:
    assert len(CASES) >= 20, CASES


@pytest.mark.parametrize(("module", "name"), CASES, ids=[c[1] for c in CASES])
def test_docstring_example_runs(module: str, name: str) -> None:
    (test,) = [t for t in _examples(module) if t.name == name]
    test.globs = {"torch": torch, "np": np, "rp": rp, **test.globs}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    torch.manual_seed(seeded(0))
    result = runner.run(test, out=report.append)
    failed = f"{name}: {result.failed} of {result.attempted} examples failed\n"
    assert result.failed == 0, failed + "".join(report)
