"""``reparam train policy``: runs, files, bit-for-bit resume after a crash, bad options."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import reparam.training.tasks.policy as module
from reparam.cli import _register
from reparam.cli.app import app
from reparam.training import MetricsLog, OptionsError, RunSettings, fit, load_checkpoint
from reparam.training.tasks.policy import PolicyOptions, PolicyTask

_register()


def test_lqr_run_writes_everything(tmp_path: Path) -> None:
    out = tmp_path / "lqr"
    args = ["train", "policy", "--env", "lqr", "--steps", "6", "--episodes", "8", "--eval-every", "3"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    for name in ("checkpoint.pt", "metrics.jsonl", "metrics.csv", "summary.json", "returns.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["updates"] == 6 and summary["estimator"] == "pathwise"
    assert summary["eval_cost"] > summary["optimal_cost"] > 0  # no policy beats the optimum
    assert len(MetricsLog(out / "metrics.jsonl").read()) == 6


def _crash_at(step: int, monkeypatch: pytest.MonkeyPatch) -> None:
    original = module.check_finite

    def crashing(loss: object, at: int) -> float:
        if at == step:
            raise KeyboardInterrupt  # a hard crash: no final checkpoint is written
        return original(loss, at)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "check_finite", crashing)


@pytest.mark.parametrize(
    ("env", "estimator", "baseline"),
    [("lqr", "reinforce", "moving-average"), ("cartpole", "reinforce-rtg", "learned")],
)
def test_resume_after_crash_repeats_the_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, estimator: str, baseline: str
) -> None:
    options = PolicyOptions(env=env, estimator=estimator, baseline=baseline, episodes=4)
    base = RunSettings(
        out=tmp_path / "full", steps=6, log_every=1, checkpoint_every=2, eval_every=3, progress=False
    )
    full = fit(PolicyTask(options), base)
    crashed = replace(base, out=tmp_path / "crashed")
    _crash_at(5, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        fit(PolicyTask(options), crashed)
    assert load_checkpoint(tmp_path / "crashed" / "checkpoint.pt")["step"] == 4
    monkeypatch.undo()
    resumed = fit(PolicyTask(options), replace(crashed, resume=True))
    assert resumed.step == full.step == 6
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["task"]["modules"]
    b = load_checkpoint(tmp_path / "crashed" / "checkpoint.pt")["task"]["modules"]
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=0)
    strip = lambda out: [{k: v for k, v in r.items() if k != "seconds"} for r in MetricsLog(out).read()]  # noqa: E731
    assert strip(tmp_path / "full" / "metrics.jsonl") == strip(tmp_path / "crashed" / "metrics.jsonl")


def test_resume_with_changed_options_is_refused(tmp_path: Path) -> None:
    settings = RunSettings(out=tmp_path, steps=2, progress=False)
    fit(PolicyTask(PolicyOptions(env="lqr", episodes=4)), settings)
    with pytest.raises(OptionsError, match="different options"):
        fit(PolicyTask(PolicyOptions(env="lqr", episodes=4, lr=0.123)), replace(settings, resume=True))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "mujoco"], "--env must be one of"),
        (["--env", "cartpole", "--estimator", "pathwise"], "not differentiable"),
        (["--estimator", "reinforce", "--samples", "1"], "leave-one-out needs --samples >= 2"),
        (["--baseline", "vimco", "--estimator", "reinforce"], "--baseline must be one of"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["train", "policy", "--out", str(tmp_path / "r"), "--steps", "1", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
