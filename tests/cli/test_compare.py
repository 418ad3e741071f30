"""``reparam compare`` through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reparam.cli import _register
from reparam.cli.app import app
from reparam.cli.compare import parse_option
from reparam.problems import RUNNERS, CompareRequest, register_runner

runner = CliRunner()


@pytest.fixture(autouse=True)
def _commands() -> None:
    _register()


def test_compare_prints_table_and_writes_folder(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = runner.invoke(
        app,
        [
            "compare",
            "--problem",
            "normal-quadratic",
            "--estimators",
            "pathwise,reinforce",
            "--repeats",
            "300",
            "--out",
            str(out),
            "-O",
            "mu=2",
            "-O",
            "k=0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "pathwise" in result.output and "reinforce" in result.output
    table = (out / "table.md").read_text()
    # exact d/dmu = 2 (mu - k) = 3 for the options given
    assert "| pathwise | mu |" in table and "| 3 |" in table
    assert (out / "variance.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_defaults_equal_cost_and_num_samples() -> None:
    result = runner.invoke(app, ["compare", "-p", "exponential-sin", "-r", "200", "-n", "2", "--equal-cost"])
    assert result.exit_code == 0, result.output
    assert "measure-valued" in result.output  # the problem's default estimators
    assert "equal cost" in result.output


def test_compare_errors_name_the_fix() -> None:
    result = runner.invoke(app, ["compare", "--problem", "no-such-problem"])
    assert result.exit_code != 0 and "normal-quadratic" in result.output
    result = runner.invoke(app, ["compare", "-p", "normal-cos", "-e", "pathwise,bogus"])
    assert result.exit_code != 0 and "bogus" in result.output
    result = runner.invoke(app, ["compare", "-p", "normal-cos", "-O", "nonsense"])
    assert result.exit_code != 0 and "KEY=VALUE" in result.output
    result = runner.invoke(app, ["compare", "-p", "normal-cos", "-O", "zeta=1"])
    assert result.exit_code != 0 and "zeta" in result.output


def test_compare_list() -> None:
    result = runner.invoke(app, ["compare", "--list"])
    assert result.exit_code == 0
    for name in ("normal-quadratic", "normal-cos", "exponential-sin", "bernoulli-offset"):
        assert name in result.output
    # full descriptions, and each problem's options with their defaults and types
    text = " ".join(result.output.split())
    assert "x ~ N(1, 1^2), f(x) = cos(5 x)" in text and "omega=5.0 (float)" in text
    assert "horizons=5,10,20,50,100,200 (ints)" in text and "short=0 (bool): a quick run" in text
    assert "steps=3000 (int): training steps" in text  # vae-snr, a runner


def test_option_values_are_checked_against_the_problem() -> None:
    result = runner.invoke(app, ["compare", "-p", "normal-cos", "-O", "mu=abc"])
    assert result.exit_code == 2 and "mu must be a float (e.g. -O mu=1.0), got 'abc'" in result.output
    result = runner.invoke(app, ["compare", "-p", "normal-cos", "-O", "foo=1"])
    assert result.exit_code == 2
    expected = "no option 'foo'; its options: mu=1.0 (float), sigma=1.0 (float), omega=5.0 (float)"
    assert expected in result.output


def test_custom_runner_takes_over(tmp_path: Path) -> None:
    seen: list[CompareRequest] = []
    name = "test-custom-runner"

    @register_runner(name)
    def run(request: CompareRequest) -> None:
        """A test runner."""
        seen.append(request)

    try:
        result = runner.invoke(
            app,
            ["compare", "-p", name, "-e", "reinforce", "-r", "7", "-O", "steps=3", "--out", str(tmp_path)],
        )
        assert result.exit_code == 0, result.output
        assert seen == [
            CompareRequest(
                problem=name,
                estimators=("reinforce",),
                repeats=7,
                num_samples=1,
                equal_cost=False,
                out=tmp_path,
                options={"steps": 3},
            )
        ]
    finally:
        RUNNERS.pop(name)


def test_parse_option() -> None:
    assert parse_option("dims=3") == ("dims", 3)
    assert parse_option("mu=0.5") == ("mu", 0.5)
    assert parse_option("targets=0.1,0.9") == ("targets", [0.1, 0.9])
    assert parse_option("some-name=abc") == ("some_name", "abc")
