"""``reparam train vae``: the options of a Gaussian VAE run (the engine does the rest:
:mod:`reparam.training.engine`, :mod:`reparam.training.tasks.vae`)."""

from __future__ import annotations

from collections.abc import Callable

import typer

from reparam.cli.training import Defaults, options_from, parse_ints, train_command
from reparam.training.engine import RunSettings
from reparam.training.tasks.vae import VAEOptions, VAETask


@train_command(
    "vae", Defaults(steps=10000, log_every=100, eval_every=1000, checkpoint_every=0, fast_steps=40)
)
def train_vae(
    settings: RunSettings,
    fast: bool,
    plots: bool,
    data: str = typer.Option("digits", help="'digits', a binarized-MNIST .npz path, or an IDX folder."),
    objective: str = typer.Option("elbo", help="elbo | iwae"),
    k: int = typer.Option(1, "--k", help="Samples per data point (IWAE: importance samples)."),
    gradient: str = typer.Option("standard", help="standard | stl | dreg (pathwise only)."),
    estimator: str = typer.Option(
        "pathwise", help="pathwise, or a score-function estimator: reinforce-loo, ..."
    ),
    batch_size: int = typer.Option(100),
    lr: float = typer.Option(1e-3),
    lr_final: float | None = typer.Option(
        None, help="Final learning rate of the cosine schedule (default: --lr)."
    ),
    hidden: str = typer.Option("200,200", help="Hidden sizes, comma-separated (decoder mirrors them)."),
    latent: int = typer.Option(50),
    activation: str = typer.Option("tanh"),
    likelihood: str = typer.Option("bernoulli", help="bernoulli | gaussian"),
    binarize: str = typer.Option("dynamic", help="For IDX folders: none | static | dynamic."),
    eval_k: int = typer.Option(50, help="Importance samples of the validation bound."),
    eval_size: int = typer.Option(1000, help="Validation rows of the bound."),
) -> Callable[[], VAETask]:
    """Train a Gaussian VAE (ELBO, IWAE-k, STL, DReG, or score-function ELBO)."""
    options = options_from(
        VAEOptions,
        locals(),
        lr_final=lr if lr_final is None else lr_final,
        hidden=parse_ints(hidden, "--hidden"),
        eval_k=min(eval_k, 10) if fast else eval_k,
        eval_size=min(eval_size, 200) if fast else eval_size,
    )
    return lambda: VAETask(options, plots=plots)
