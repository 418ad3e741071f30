"""The typer applications every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="reparam",
    help="Monte Carlo gradient estimation: demos, estimator comparisons, training, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
)
train_app = typer.Typer(help="Train a model (checkpoints, resume, plots).", no_args_is_help=True)
evaluate_app = typer.Typer(help="Evaluate a trained model from its checkpoint.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")
