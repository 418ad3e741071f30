"""``reparam train discrete-vae``: fast mode, bit-for-bit resume, interruption, bad options."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import typer
from seeds import seeded
from typer.testing import CliRunner

from reparam.cli import _register
from reparam.cli.app import app
from reparam.cli.train_discrete_vae import Options, train
from reparam.data import Splits
from reparam.training import CHECKPOINT_FILE, METRICS_FILE, load_checkpoint


def synthetic() -> Splits:
    g = torch.Generator().manual_seed(seeded(0))
    x = torch.bernoulli(torch.full((300, 16), 0.3), generator=g)
    return Splits("synthetic", x[:200], x[200:250], x[250:])


def options(out, estimator: str = "rebar", steps: int = 8) -> Options:
    return Options(
        out=str(out),
        data="unused",
        estimator=estimator,
        steps=steps,
        batch_size=10,
        log_every=2,
        eval_every=4,
        eval_k=5,
        eval_size=20,
        checkpoint_every=2,
        progress=False,
    )


def test_fast_mode_on_mnist(mnist_path, tmp_path) -> None:
    _register()
    result = CliRunner().invoke(
        app,
        [
            "train",
            "discrete-vae",
            "--data",
            str(mnist_path),
            "--out",
            str(tmp_path),
            "--fast",
            "--steps",
            "6",
            "--estimator",
            "disarm",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "train ELBO" in result.output and "test 20-sample bound" in result.output
    assert (tmp_path / CHECKPOINT_FILE).is_file() and (tmp_path / METRICS_FILE).is_file()


@pytest.mark.parametrize("estimator", ["rebar", "reinforce-ma", "disarm"])
def test_resume_is_bit_for_bit(tmp_path, estimator: str) -> None:
    # 8 steps straight vs 4 steps + resume to 8: same model, optimizer and estimator state
    # (REBAR's temperature/eta, the moving-average baseline) and the same metrics.
    splits = synthetic()
    full = train(options(tmp_path / "full", estimator), splits=splits)
    half = options(tmp_path / "half", estimator, steps=4)
    train(half, splits=splits)
    resumed = train(replace(half, steps=8), resume=True, splits=splits)
    assert full.step == resumed.step == 8
    a, b = (load_checkpoint(tmp_path / run / CHECKPOINT_FILE) for run in ("full", "half"))
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    if isinstance(a["estimator"], dict):
        for key in a["estimator"]:
            assert torch.equal(a["estimator"][key], b["estimator"][key]), key
    elif hasattr(a["estimator"], "baseline"):
        assert vars(a["estimator"].baseline) == vars(b["estimator"].baseline)
    lines_a = (tmp_path / "full" / METRICS_FILE).read_text().splitlines()
    lines_b = (tmp_path / "half" / METRICS_FILE).read_text().splitlines()
    strip = lambda lines: [{k: v for k, v in eval(line).items() if k != "seconds"} for line in lines]  # noqa: E731
    assert strip(lines_a) == strip(lines_b)


def test_interrupt_saves_a_checkpoint_and_resume_completes(tmp_path) -> None:
    splits = synthetic()
    first = train(options(tmp_path, "disarm"), splits=splits, stop=lambda step: step >= 3)
    assert first.status == "interrupted" and first.step == 3
    assert load_checkpoint(tmp_path / CHECKPOINT_FILE)["step"] == 3
    second = train(options(tmp_path, "disarm"), resume=True, splits=splits)
    assert second.status == "done" and second.step == 8 and second.test_bound is not None


def test_resume_with_changed_options_is_refused(tmp_path) -> None:
    splits = synthetic()
    train(options(tmp_path, "disarm", steps=2), splits=splits)
    with pytest.raises(typer.BadParameter, match="different options"):
        train(replace(options(tmp_path, "disarm"), lr=0.5), resume=True, splits=splits)


def test_bad_estimator_and_data_are_refused(tmp_path) -> None:
    with pytest.raises(typer.BadParameter, match="unknown estimator"):
        train(options(tmp_path, "nonsense"), splits=synthetic())
    _register()
    result = CliRunner().invoke(app, ["train", "discrete-vae", "--data", str(tmp_path / "nope.npz")])
    # Rich may wrap the panel anywhere in the message: compare with whitespace made single spaces.
    assert result.exit_code != 0 and "does not exist" in " ".join(result.output.replace("│", " ").split())
