"""``reparam train policy``: the options of a policy-gradient run (the engine does the rest:
:mod:`reparam.training.engine`, :mod:`reparam.training.tasks.policy`)."""

from __future__ import annotations

from collections.abc import Callable

import typer

from reparam.cli.training import Defaults, options_from, train_command
from reparam.training.engine import RunSettings
from reparam.training.tasks.policy import PolicyOptions, PolicyTask


@train_command("policy", Defaults(steps=300, log_every=1, eval_every=25, checkpoint_every=25, fast_steps=10))
def train_policy(
    settings: RunSettings,
    fast: bool,
    plots: bool,
    env: str = typer.Option("lqr", help="lqr | pendulum | cartpole"),
    estimator: str = typer.Option(
        "", help="pathwise | reinforce | reinforce-rtg | deterministic (default: pathwise, cartpole: rtg)."
    ),
    baseline: str = typer.Option(
        "leave-one-out", help="For reinforce*: none | moving-average | leave-one-out | learned."
    ),
    episodes: int = typer.Option(
        0,
        help="Initial states per update (CartPole: parallel episodes); 0: lqr 128, pendulum 32, cartpole 16.",
    ),
    samples: int = typer.Option(
        4, help="Episodes per initial state (control tasks; leave-one-out needs >= 2)."
    ),
    lr: float = typer.Option(0.0, help="Adam learning rate (0: the environment's default)."),
    std: float = typer.Option(
        0.0, help="Gaussian policy's standard deviation (0: the environment's default)."
    ),
    learn_std: bool = typer.Option(False, "--learn-std/--fixed-std", help="Train the policy's log-std too."),
    horizon: int = typer.Option(
        0, help="Episode length of the control tasks (0: default, lqr 50, pendulum 30)."
    ),
    hidden: int = typer.Option(32, help="Hidden width of the MLP policies."),
    discount: float = typer.Option(0.99, help="Discount of the reward-to-go (CartPole and reinforce-rtg)."),
    max_norm: float = typer.Option(
        0.0, help="Clip the gradient norm (0: environment's default; pendulum 10)."
    ),
) -> Callable[[], PolicyTask]:
    """Train a policy with the score function, pathwise or deterministic policy gradients
    (one process: each update draws its own episodes)."""
    options = options_from(PolicyOptions, locals())
    return lambda: PolicyTask(options, plots=plots)
