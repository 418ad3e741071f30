"""``reparam train bnn``: the options of a Bayesian-network run (the engine does the rest:
:mod:`reparam.training.engine`, :mod:`reparam.training.tasks.bnn`); ``--estimator all`` trains
the deterministic baseline and the three estimators into ``OUT/<data>-<arch>-<estimator>`` and
writes a comparison table and an overlaid reliability diagram."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from reparam.cli.training import Defaults, fast_settings, options_from, parse_ints, run_task, train_command
from reparam.nn import reliability_diagram
from reparam.training.engine import RunSettings
from reparam.training.tasks.bnn import CHOICES, BNNOptions, BNNTask, load_bnn_data


def comparison(summaries: list[dict], regression: bool) -> tuple[Table, str]:
    """The test metrics of several runs as a rich table and as Markdown."""
    keys = ["rmse", "nll", "aleatoric_std", "epistemic_std"] if regression else ["accuracy", "nll", "ece"]
    table = Table(title="test set")
    table.add_column("run")
    for key in keys:
        table.add_column(key, justify="right")
    lines = ["| run | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for summary in summaries:
        values = [f"{summary['test'][k]:.4f}" for k in keys]
        table.add_row(summary["name"], *values)
        lines.append(f"| {summary['name']} | " + " | ".join(values) + " |")
    return table, "\n".join(lines) + "\n"


def _returning(task: BNNTask) -> Callable[[], BNNTask]:
    return lambda: task


def _run_all(options: BNNOptions, settings: RunSettings, plots: bool) -> None:
    tasks = [BNNTask(replace(options, estimator=name), plots=plots) for name in CHOICES]
    for task in tasks:
        run_task(_returning(task), replace(settings, out=settings.out / task.options.name), plots)
    summaries = [json.loads((settings.out / t.options.name / "summary.json").read_text()) for t in tasks]
    table, markdown = comparison(summaries, options.regression)
    Console().print(table)
    stem = settings.out / f"{options.data}-{options.arch}"
    Path(f"{stem}-comparison.md").write_text(markdown)
    if not options.regression and plots:
        curves = {t.options.estimator: t.test_probabilities() for t in tasks}
        labels = next(iter(curves.values()))[1]
        probs = {k: v[0] for k, v in curves.items()}
        title = f"{options.data} {options.arch}: reliability on the test set"
        typer.echo(
            f"wrote {reliability_diagram(probs, labels, Path(f'{stem}-reliability.png'), title=title)}"
        )


@train_command("bnn", Defaults(steps=0, log_every=20, eval_every=100, checkpoint_every=0, fast_steps=20))
def train_bnn(
    settings: RunSettings,
    fast: bool,
    plots: bool,
    data: str = typer.Option(
        "digits", help="digits | breast-cancer (classification) | diabetes (regression)."
    ),
    arch: str = typer.Option("mlp", help="mlp | cnn (cnn: 8x8 digits only)."),
    estimator: str = typer.Option("flipout", help="reparam | local | flipout | deterministic | all."),
    epochs: int = typer.Option(40, help="Passes over the training set (when --steps is 0)."),
    batch_size: int = typer.Option(64, help="Minibatch size (the KL is scaled by the dataset size)."),
    lr: float = typer.Option(3e-3, help="Adam learning rate."),
    prior_scale: float = typer.Option(1.0, help="Standard deviation of the N(0, s^2) weight prior."),
    kl_weight: float = typer.Option(1.0, help="Multiplies the KL (1 = the ELBO)."),
    hidden: str = typer.Option("200,200", help="MLP hidden widths, comma separated."),
    eval_samples: int = typer.Option(32, help="Posterior draws for the test predictive."),
) -> tuple[Callable[[], BNNTask] | None, RunSettings]:
    """Train a Bayesian network; --steps 0 (the default) trains for --epochs passes."""
    options = options_from(
        BNNOptions,
        locals(),
        estimator="flipout" if estimator == "all" else estimator,
        hidden=parse_ints(hidden, "--hidden"),
        eval_samples=min(eval_samples, 4) if fast else eval_samples,
    )
    options.validate()
    if epochs < 1:
        raise typer.BadParameter(f"--epochs must be >= 1, got {epochs}.", param_hint="--epochs")
    splits = load_bnn_data(options)
    if settings.steps == 0:
        per_epoch = max(1, len(splits.x_train) // min(batch_size, len(splits.x_train)))
        settings = replace(settings, steps=epochs * per_epoch)
        settings = fast_settings(settings, 20) if fast else settings
    if estimator == "all":
        _run_all(options, settings, plots)
        return None, settings
    return (lambda: BNNTask(options, splits, plots=plots)), settings
