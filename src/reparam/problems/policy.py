"""``reparam compare --problem policy-horizon``: gradient variance against horizon, pathwise
against score-function policy gradients, on LQR (smooth, stable) and the pendulum (non-smooth,
sensitive to initial conditions)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from reparam._optional import require
from reparam.models.policy.horizon import ESTIMATORS, HorizonVariance, horizon_variance
from reparam.models.policy.lqr import LQR
from reparam.models.policy.pendulum import Pendulum
from reparam.models.policy.plots import horizon_plot
from reparam.problems.base import CompareRequest, register_runner

DEFAULT_HORIZONS = (5, 10, 20, 50, 100, 200)
MAX_REPEATS = 400
TASKS = ("lqr", "pendulum")


def _horizons(value: object) -> tuple[int, ...]:
    if value is None:
        return DEFAULT_HORIZONS
    values = value if isinstance(value, list) else [value]
    horizons = tuple(int(v) for v in values if isinstance(v, (int, float, str)))
    if len(horizons) != len(values):
        raise ValueError(f"horizons must be numbers, got {value!r}.")
    if not horizons or min(horizons) < 1:
        raise ValueError(f"horizons must be positive ints, e.g. -O horizons=5,10,50, got {value!r}.")
    return horizons


def run_study(
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    tasks: Sequence[str] = TASKS,
    estimators: Sequence[str] = ESTIMATORS,
    repeats: int = 200,
    samples: int = 4,
    seed: int = 0,
) -> dict[str, HorizonVariance]:
    """The study behind the figure: linear Gaussian policies, ``samples`` episodes from each of
    4 initial states per estimate; LQR at ``K = K*/2``, ``sigma = 0.3``; pendulum at ``K = 0``
    (torque noise only), ``sigma = 0.5``, features ``(cos, sin, omega/8)``."""
    results: dict[str, HorizonVariance] = {}
    for task in tasks:
        if task == "lqr":
            gain, std = 0.5 * LQR().K_star.float(), 0.3
            results[task] = horizon_variance(
                lambda T: LQR(horizon=T), horizons, gain, std, estimators, repeats, 4, samples, seed
            )
        elif task == "pendulum":
            results[task] = horizon_variance(
                lambda T: Pendulum(horizon=T),
                horizons,
                torch.zeros(1, 3),
                0.5,
                estimators,
                repeats,
                4,
                samples,
                seed,
            )
        else:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    return results


def to_markdown(results: dict[str, HorizonVariance]) -> str:
    """One table per task: variance of each estimator and the pathwise / score-function ratio."""
    lines = []
    for task, result in results.items():
        names = list(result.variance)
        lines.append(
            f"**{task}** (total variance of one estimate of grad J_T/T; "
            f"{result.episodes_per_estimate} episodes/estimate, {result.repeats} repeats)\n"
        )
        header = "| T | " + " | ".join(names) + " | pathwise / score-function |"
        lines += [header, "|" + "---|" * (len(names) + 2)]
        for i, horizon in enumerate(result.horizons):
            cells = [f"{result.variance[n][i]:.3g}" for n in names]
            ratio = ""
            if "pathwise" in result.variance and "score-function" in result.variance:
                ratio = f"{result.variance['pathwise'][i] / result.variance['score-function'][i]:.3g}"
            lines.append(f"| {horizon} | " + " | ".join(cells) + f" | {ratio} |")
        lines.append("")
    return "\n".join(lines)


@register_runner("policy-horizon")
def policy_horizon(request: CompareRequest) -> None:
    """Policy-gradient variance against horizon: pathwise vs score function (LQR, pendulum)."""
    require("rich", extra="cli", feature="the policy-horizon runner")
    from rich.console import Console
    from rich.markdown import Markdown

    options = dict(request.options)
    horizons = _horizons(options.pop("horizons", None))
    tasks = tuple(str(options.pop("tasks", "lqr,pendulum")).split(",")) if "tasks" in options else TASKS
    samples = int(options.pop("samples", max(request.num_samples, 4)))  # type: ignore[call-overload]
    if options:
        raise ValueError(f"unknown options {sorted(options)}; policy-horizon takes horizons, tasks, samples.")
    names: tuple[str, ...] = ESTIMATORS
    if request.estimators:
        mapping = {"pathwise": "pathwise", "reinforce-loo": "score-function"}
        unknown = [n for n in request.estimators if n not in mapping]
        if unknown:
            raise ValueError(f"policy-horizon compares pathwise and reinforce-loo, not {unknown}.")
        names = tuple(mapping[n] for n in request.estimators)
    console = Console()
    # Many small sequential rollouts: intra-op threads only add synchronisation (this is the
    # command's own process, so the setting is not restored).
    torch.set_num_threads(1)
    repeats = min(request.repeats, MAX_REPEATS)
    if repeats < request.repeats:
        console.print(
            f"[dim]repeats capped at {MAX_REPEATS} (each estimate already runs {4 * samples} episodes)[/]"
        )
    with console.status(f"[bold]policy-horizon[/]: {len(horizons)} horizons x {len(names)} estimators ..."):
        results = run_study(horizons, tasks, names, repeats, samples)
    table = to_markdown(results)
    console.print(Markdown(table))
    if request.out is not None:
        request.out.mkdir(parents=True, exist_ok=True)
        (request.out / "table.md").write_text(table)
        path = horizon_plot(results, request.out / "horizon_variance.png")
        console.print(f"wrote {request.out / 'table.md'} and {path}")
