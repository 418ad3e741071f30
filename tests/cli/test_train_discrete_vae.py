"""``reparam train discrete-vae``: fast mode, bit-for-bit resume (estimator state included),
interruption, changed options and bad data refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from seeds import seeded
from typer.testing import CliRunner

from reparam.cli import _register
from reparam.cli.app import app
from reparam.data import Splits
from reparam.training import CHECKPOINT_FILE, METRICS_FILE, OptionsError, RunSettings, fit, load_checkpoint
from reparam.training.tasks.discrete_vae import DiscreteVAEOptions, DiscreteVAETask

_register()


def synthetic() -> Splits:
    g = torch.Generator().manual_seed(seeded(0))
    x = torch.bernoulli(torch.full((300, 16), 0.3), generator=g)
    return Splits("synthetic", x[:200], x[200:250], x[250:])


def task(estimator: str = "rebar", **changes: object) -> DiscreteVAETask:
    options = DiscreteVAEOptions(data="unused", estimator=estimator, batch_size=10, eval_k=5, eval_size=20)
    return DiscreteVAETask(replace(options, **changes), synthetic())  # type: ignore[arg-type]


def run(out: Path, steps: int = 8, **changes: object) -> RunSettings:
    base = RunSettings(out=out, steps=steps, log_every=2, eval_every=4, checkpoint_every=2, progress=False)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_fast_mode_on_mnist(mnist_path, tmp_path) -> None:
    args = [
        "train",
        "discrete-vae",
        "--data",
        str(mnist_path),
        "--out",
        str(tmp_path),
        "--fast",
        "--steps",
        "6",
    ]
    result = CliRunner().invoke(app, [*args, "--estimator", "disarm", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "train_elbo" in result.output and "test_bound" in result.output and "at step 6" in result.output
    assert (tmp_path / CHECKPOINT_FILE).is_file() and (tmp_path / METRICS_FILE).is_file()


@pytest.mark.parametrize("estimator", ["rebar", "reinforce-ma", "disarm"])
def test_resume_is_bit_for_bit(tmp_path, estimator: str) -> None:
    # 8 steps straight vs 4 steps + resume to 8: same model, optimizer and estimator state
    # (REBAR's temperature/eta, the moving-average baseline) and the same metrics.
    full = fit(task(estimator), run(tmp_path / "full"))
    fit(task(estimator), run(tmp_path / "half", steps=4))
    resumed = fit(task(estimator), run(tmp_path / "half", resume=True))
    assert full.step == resumed.step == 8
    a, b = (load_checkpoint(tmp_path / name / CHECKPOINT_FILE)["task"] for name in ("full", "half"))
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert json.dumps(a["estimator"], default=str) == json.dumps(b["estimator"], default=str)

    def strip(name: str) -> list[dict]:
        lines = (tmp_path / name / METRICS_FILE).read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]

    assert strip("full") == strip("half")


def test_interrupt_saves_a_checkpoint_and_resume_completes(tmp_path) -> None:
    first = fit(task("disarm"), run(tmp_path), stop=lambda step: step >= 3)
    assert first.status == "interrupted" and first.step == 3
    assert load_checkpoint(tmp_path / CHECKPOINT_FILE)["step"] == 3
    second = fit(task("disarm"), run(tmp_path, resume=True))
    assert second.status == "done" and second.step == 8 and second.eval_step == 8


def test_changed_options_bad_estimator_and_bad_data_are_refused(tmp_path, mnist_path) -> None:
    fit(task("disarm"), run(tmp_path / "a", steps=2))
    with pytest.raises(OptionsError, match="different options.*--lr"):
        fit(task("disarm", lr=0.5), run(tmp_path / "a", resume=True))
    with pytest.raises(OptionsError, match="unknown estimator"):
        task("nonsense")
    grey = replace(synthetic(), x_train=synthetic().x_train * 0.5)
    with pytest.raises(Exception, match="not all 0 or 1"):
        fit(DiscreteVAETask(DiscreteVAEOptions(data="grey.npz"), grey), run(tmp_path / "b"))
    result = CliRunner().invoke(
        app, ["train", "discrete-vae", "--data", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output
