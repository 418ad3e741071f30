"""``reparam compare --problem policy-horizon``: the runner writes its table and figure."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from seeds import seeded

from reparam.problems import RUNNERS, CompareRequest
from reparam.problems.policy import run_study, to_markdown


def test_runner_writes_table_and_figure(tmp_path: Path) -> None:
    # the runner pins one thread; the autouse fixture in tests/conftest.py restores the setting
    request = CompareRequest(
        problem="policy-horizon", repeats=8, out=tmp_path, options={"horizons": [3.0, 6.0], "samples": 2}
    )
    RUNNERS["policy-horizon"](request)
    table = (tmp_path / "table.md").read_text()
    assert "**lqr**" in table and "**pendulum**" in table and "| 6 |" in table
    assert (tmp_path / "horizon_variance.png").stat().st_size > 1000


def test_study_numbers_and_bad_options() -> None:
    torch.manual_seed(seeded(0))
    results = run_study([4], ["lqr"], ("pathwise", "score-function"), repeats=20, samples=2)
    variance = results["lqr"].variance
    assert variance["pathwise"][0] > 0 and variance["score-function"][0] > 0
    assert "pathwise / score-function" in to_markdown(results)
    with pytest.raises(ValueError, match="unknown options"):
        RUNNERS["policy-horizon"](CompareRequest(problem="policy-horizon", options={"colour": 1}))
    with pytest.raises(ValueError, match="task must be one of"):
        run_study([4], ["cartpole"])
