"""``reparam compare --problem logistic-regression``: option parsing and a short run through
the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reparam.cli import _register
from reparam.cli.app import app
from reparam.problems import RUNNERS
from reparam.problems.logistic_regression import study_config

runner = CliRunner()


@pytest.fixture(autouse=True)
def _commands() -> None:
    _register()


def test_registered() -> None:
    assert "logistic-regression" in RUNNERS


def test_study_config_options() -> None:
    assert study_config({}).steps == 5000
    short = study_config({"short": 1})
    assert short.steps == 60
    config = study_config({"short": 1, "samples": 8, "lr": "0.01", "qmc_run": 0})
    assert config.num_samples == 8 and config.lr == 0.01 and config.qmc_run is False
    with pytest.raises(ValueError, match="valid"):
        study_config({"stepz": 3})


def test_compare_runs_short_study(tmp_path: Path) -> None:
    out = tmp_path / "blr"
    options = ["short=1", "steps=6", "record_every=3", "variance_repeats=2", "eval_samples=20", "samples=6"]
    args = ["compare", "--problem", "logistic-regression", "--out", str(out)]
    for option in options:
        args += ["-O", option]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "findings" in result.output
    assert "score-function / moving-average" in result.output
    for name in ("table.md", "study.png", "results.json"):
        assert (out / name).is_file()
