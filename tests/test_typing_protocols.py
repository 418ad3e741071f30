"""The protocols are checked statically: mypy, with the project's settings, accepts every
estimator as an ``Estimator`` and every baseline as a ``Baseline`` (``tests/typing_snippets.py``)
and rejects deliberate mismatches, so that the check can fail."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = ROOT / "tests" / "typing_snippets.py"


def _mypy() -> list[str]:
    local = Path(sys.executable).with_name("mypy")
    if local.exists():
        return [str(local)]
    found = shutil.which("mypy")
    if found is None:
        pytest.skip("mypy is not installed (pip install mypy)")
    return [found]


def _run_mypy(path: Path) -> subprocess.CompletedProcess[str]:
    command = [*_mypy(), "--config-file", str(ROOT / "pyproject.toml"), "--no-pretty", str(path)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _error_lines(output: str, path: Path) -> set[int]:
    pattern = re.compile(rf"^{re.escape(str(path))}:(\d+): error:", re.MULTILINE)
    return {int(line) for line in pattern.findall(output)}


def test_every_estimator_and_baseline_satisfies_its_protocol() -> None:
    result = _run_mypy(SNIPPETS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_snippets_run() -> None:
    """The snippet file is real code: every construction and call in it works."""
    sys.path.insert(0, str(SNIPPETS.parent))
    try:
        import typing_snippets
    finally:
        sys.path.remove(str(SNIPPETS.parent))
    typing_snippets.run()


# Each line with a ``# error`` comment must be reported by mypy, and no other line.
MISMATCHES = '''
from __future__ import annotations

from torch import Tensor
from torch.distributions import Distribution, Normal

import reparam as rp
from reparam.baselines import Baseline, ControlVariate, LeaveOneOut
from reparam.estimators.base import CostFn


class TwoArguments:
    def __call__(self, f: CostFn, q: Distribution) -> Tensor:
        return q.mean


class ReturnsFloat:
    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> float:
        return 0.0


class NoMinSamples:
    def __call__(self, costs: Tensor, z: Tensor, q: Distribution, f: CostFn) -> ControlVariate:
        return ControlVariate(costs.mean(0))


class WrongBaselineCall:
    min_samples: int = 1

    def __call__(self, costs: Tensor, q: Distribution) -> ControlVariate:
        return ControlVariate(costs.mean(0))


a: rp.Estimator = TwoArguments()  # error
b: rp.Estimator = ReturnsFloat()  # error
c: Baseline = NoMinSamples()  # error
d: Baseline = WrongBaselineCall()  # error
e: Baseline = rp.Pathwise()  # error
rp.ScoreFunction(rp.Pathwise())  # error
rp.ScoreFunction(baseline=WrongBaselineCall())  # error
g: rp.Estimator = LeaveOneOut()  # error
rp.expect(lambda z: z, Normal(0.0, 1.0), LeaveOneOut())  # error
h: int = rp.REBAR()(lambda z: z, Normal(0.0, 1.0), 1)  # error: the nn.Module's call is typed
fine: rp.Estimator = rp.ScoreFunction(LeaveOneOut())
'''


def test_mismatches_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "mismatches.py"
    source = textwrap.dedent(MISMATCHES).lstrip()
    path.write_text(source)
    expected = {i for i, line in enumerate(source.splitlines(), start=1) if "# error" in line}
    result = _run_mypy(path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert _error_lines(result.stdout, path) == expected, result.stdout
