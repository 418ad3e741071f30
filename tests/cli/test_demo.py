"""``reparam demo --fast``: runs end to end, writes its report and plots, prints the path."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from reparam.cli import _register
from reparam.cli.app import app


def test_demo_fast_writes_report_and_plots(tmp_path: Path) -> None:
    _register()
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--fast", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    for section in ("(a) One gradient", "(b) Fitting a Gaussian", "(c) Bernoulli latents"):
        assert section in report
    for image in (
        "variance-normal-quadratic.png",
        "variance-normal-cos.png",
        "variance-exponential-sin.png",
        "fit-normal.png",
        "variance-bernoulli.png",
        "bernoulli-optimisation.png",
    ):
        assert (out / image).stat().st_size > 1000, image
        assert f"]({image})" in report
    # The report teaches: the model, the trick, both estimators' formulas, and z beside bias.
    for phrase in (
        "z = mu + sigma * eps",
        "E[f(z) grad_phi log q_phi(z)]",
        "E_eps[f'(z) grad_phi z]",
        "conjugate model x_i ~ N(theta, s^2)",
        "| bias | z | variance | variance × evals |",
        "per evaluation of f",
    ):
        assert phrase in report, phrase
    assert "Report written" in result.output
    assert "The trick is not always the winner" in result.output
