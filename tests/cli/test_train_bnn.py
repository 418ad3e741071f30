"""``reparam train bnn``: runs end to end, writes its files, resumes bit for bit, rejects bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from reparam.cli import _register
from reparam.cli.app import app
from reparam.cli.train_bnn import Config, run
from reparam.training import load_checkpoint

runner = CliRunner()
TINY = Config(epochs=2, batch_size=256, hidden=(16,), eval_samples=2)


def test_resume_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    full = run(TINY, tmp_path / "a", progress=False)
    run(replace(TINY, epochs=1), tmp_path / "b", progress=False)
    resumed = run(TINY, tmp_path / "b", resume=True, progress=False)
    assert resumed["test"] == full["test"] and resumed["epochs_done"] == 2
    a = load_checkpoint(tmp_path / "a" / TINY.name / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / TINY.name / "checkpoint.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    log_a = (tmp_path / "a" / TINY.name / "metrics.jsonl").read_text()
    assert log_a == (tmp_path / "b" / TINY.name / "metrics.jsonl").read_text()
    folder = tmp_path / "a" / TINY.name
    assert {p.name for p in folder.iterdir()} == {
        "checkpoint.pt",
        "metrics.jsonl",
        "curves.png",
        "summary.json",
    }
    assert 0 <= full["test"]["accuracy"] <= 1 and full["test"]["nll"] > 0


def test_regression_on_diabetes(tmp_path: Path) -> None:
    summary = run(replace(TINY, data="diabetes", estimator="local", epochs=1), tmp_path, progress=False)
    test = summary["test"]
    assert all(torch.isfinite(torch.tensor(v)) for v in test.values())
    assert test["epistemic_std"] > 0 and test["aleatoric_std"] > 0
    assert (tmp_path / "diabetes-mlp-local" / "predictions.png").is_file()


def test_command_all_estimators_writes_table_and_diagram(tmp_path: Path) -> None:
    _register()
    args = ["train", "bnn", "--estimator", "all", "--arch", "cnn", "--epochs", "1", "--batch-size", "512"]
    result = runner.invoke(app, [*args, "--eval-samples", "2", "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    table = (tmp_path / "digits-cnn-comparison.md").read_text()
    for name in ("deterministic", "reparam", "local", "flipout"):
        assert f"digits-cnn-{name}" in table
        assert json.loads((tmp_path / f"digits-cnn-{name}" / "summary.json").read_text())["epochs_done"] == 1
    assert (tmp_path / "digits-cnn-reliability.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--estimator", "dropout"], "--estimator"),
        (["--data", "diabetes", "--arch", "cnn"], "--arch cnn"),
        (["--data", "nowhere"], "--data"),
        (["--epochs", "0"], "--epochs"),
        (["--hidden", "a,b"], "--hidden"),
    ],
)
def test_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    _register()
    result = runner.invoke(app, ["train", "bnn", *args, "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code != 0 and message in result.output


def test_resume_without_checkpoint_or_with_other_options(tmp_path: Path) -> None:
    _register()
    result = runner.invoke(app, ["train", "bnn", "--resume", "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code != 0
    run(replace(TINY, epochs=1), tmp_path, progress=False)
    with pytest.raises(Exception, match="only --epochs may change"):
        run(replace(TINY, lr=0.1), tmp_path, resume=True, progress=False)
