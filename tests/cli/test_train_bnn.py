"""``reparam train bnn``: runs end to end, writes its files, resumes bit for bit, rejects bad input,
never deletes a previous run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from reparam.cli import _register
from reparam.cli.app import app
from reparam.training import OptionsError, RunSettings, fit, load_checkpoint
from reparam.training.tasks.bnn import BNNOptions, BNNTask

runner = CliRunner()
_register()
TINY = BNNOptions(batch_size=256, hidden=(16,), eval_samples=2)


def settings(out: Path, steps: int = 8, **changes: object) -> RunSettings:
    return replace(RunSettings(out=out, steps=steps, log_every=2, eval_every=4, progress=False), **changes)  # type: ignore[arg-type]


def test_resume_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    fit(BNNTask(TINY, plots=True), settings(tmp_path / "a"))
    fit(BNNTask(TINY), settings(tmp_path / "b", steps=4))
    fit(BNNTask(TINY), settings(tmp_path / "b", resume=True))
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["task"]["model"]
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["task"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    def strip(p: Path) -> list[dict]:
        return [
            {k: v for k, v in json.loads(x).items() if k != "seconds"} for x in p.read_text().split("\n") if x
        ]

    assert strip(tmp_path / "a" / "metrics.jsonl") == strip(tmp_path / "b" / "metrics.jsonl")
    assert {p.name for p in (tmp_path / "a").iterdir()} == {
        "checkpoint.pt",
        "metrics.jsonl",
        "metrics.csv",
        "curves.png",
        "summary.json",
    }
    test = json.loads((tmp_path / "a" / "summary.json").read_text())["test"]
    assert 0 <= test["accuracy"] <= 1 and test["nll"] > 0


def test_regression_on_diabetes(tmp_path: Path) -> None:
    fit(BNNTask(replace(TINY, data="diabetes", estimator="local"), plots=True), settings(tmp_path, steps=2))
    test = json.loads((tmp_path / "summary.json").read_text())["test"]
    assert all(torch.isfinite(torch.tensor(v)) for v in test.values())
    assert test["epistemic_std"] > 0 and test["aleatoric_std"] > 0
    assert (tmp_path / "predictions.png").is_file()


def test_command_all_estimators_writes_table_and_diagram_and_never_deletes(tmp_path: Path) -> None:
    args = ["train", "bnn", "--estimator", "all", "--arch", "cnn", "--epochs", "1", "--batch-size", "512"]
    result = runner.invoke(app, [*args, "--eval-samples", "2", "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    table = (tmp_path / "digits-cnn-comparison.md").read_text()
    for name in ("deterministic", "reparam", "local", "flipout"):
        assert f"digits-cnn-{name}" in table
        assert json.loads((tmp_path / f"digits-cnn-{name}" / "summary.json").read_text())["steps_done"] == 2
    assert (tmp_path / "digits-cnn-reliability.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "digits-cnn-deterministic" / "mine.txt").write_text("keep")
    again = runner.invoke(app, [*args, "--out", str(tmp_path), "--no-progress"])
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert (tmp_path / "digits-cnn-deterministic" / "mine.txt").read_text() == "keep"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--estimator", "dropout"], "--estimator"),
        (["--data", "diabetes", "--arch", "cnn"], "--arch cnn"),
        (["--data", "nowhere"], "--data"),
        (["--epochs", "0"], "--epochs"),
        (["--hidden", "a,b"], "--hidden"),
        (["--arch", "transformer"], "--arch"),
        (["--resume"], "no checkpoint.pt"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["train", "bnn", *args, "--out", str(tmp_path / "r"), "--no-progress"])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_resume_with_other_options_is_refused(tmp_path: Path) -> None:
    fit(BNNTask(TINY), settings(tmp_path, steps=2))
    with pytest.raises(OptionsError, match="--lr"):
        fit(BNNTask(replace(TINY, lr=0.1)), settings(tmp_path, resume=True))
