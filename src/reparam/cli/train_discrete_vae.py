"""``reparam train discrete-vae``: the options of a Bernoulli-latent VAE run (the engine does
the rest: :mod:`reparam.training.engine`, :mod:`reparam.training.tasks.discrete_vae`)."""

from __future__ import annotations

from collections.abc import Callable

import typer

from reparam.cli.training import Defaults, options_from, train_command
from reparam.training.engine import RunSettings
from reparam.training.tasks.discrete_vae import DiscreteVAEOptions, DiscreteVAETask


@train_command(
    "discrete-vae", Defaults(steps=10000, log_every=100, eval_every=2000, checkpoint_every=500, fast_steps=30)
)
def train_discrete_vae(
    settings: RunSettings,
    fast: bool,
    plots: bool,
    data: str = typer.Option(..., "--data", help="Static binarized MNIST .npz (keys train/valid/test)."),
    estimator: str = typer.Option("disarm", "--estimator", "-e", help="Estimator name (reparam registry)."),
    arch: str = typer.Option("linear", help="linear (784-200) | nonlinear (784-200-200-200)."),
    num_samples: int = typer.Option(
        1, "--num-samples", "-n", help="Samples (antithetic pairs for ARM/DisARM)."
    ),
    batch_size: int = typer.Option(50),
    lr: float = typer.Option(1e-3, help="Adam learning rate (model and estimator parameters)."),
    eval_k: int = typer.Option(100, help="Importance samples of the test bound."),
    eval_size: int = typer.Option(1000, help="Test rows used for the bound (10000 for the full set)."),
) -> Callable[[], DiscreteVAETask]:
    """Train a Bernoulli-latent VAE (ARM/DisARM papers' models) with any discrete estimator.
    --fast: 30 steps on 1000 training rows with a 20-sample bound on 100 test rows."""
    options = options_from(
        DiscreteVAEOptions,
        locals(),
        eval_k=min(eval_k, 20) if fast else eval_k,
        eval_size=min(eval_size, 100) if fast else eval_size,
        train_size=1000 if fast else None,
    )
    return lambda: DiscreteVAETask(options)
