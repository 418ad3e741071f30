"""Demo part (c): Bernoulli latents, where the pathwise estimator is impossible and the score
function needs its baseline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.distributions import Bernoulli, Independent

import reparam as rp
from reparam._optional import pyplot
from reparam.demo.report import Report
from reparam.demo.tables import compact
from reparam.diagnostics import compare
from reparam.estimators.registry import make_estimator
from reparam.problems import ProblemInstance, get_problem

if TYPE_CHECKING:
    from rich.console import Console

ESTIMATORS = ("reinforce", "reinforce-ma", "reinforce-loo", "measure-valued")
TARGETS = (0.1, 0.3, 0.7, 0.9)
OFFSET = 10.0
CHAINS = 16  # independent optimisation runs, batched in one distribution
LEARNING_RATE = 0.3


def _pathwise_refusal(problem: ProblemInstance) -> str:
    try:
        rp.expect(problem.f, problem.q, rp.Pathwise())
    except TypeError as error:
        return str(error)
    raise AssertionError("Pathwise accepted a Bernoulli")


def _expected_cost(phi: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Exact E[f] per chain: sum_i p_i (1 - t_i)^2 + (1 - p_i) t_i^2 + offset."""
    p = torch.sigmoid(phi)
    return (p * (1 - targets) ** 2 + (1 - p) * targets**2).sum(-1) + OFFSET


def _optimise(estimator_name: str, targets: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """``CHAINS`` SGD runs from phi = 0; returns the exact expected cost, shape (steps+1, CHAINS)."""
    phi = torch.zeros(CHAINS, len(targets), dtype=torch.float64, requires_grad=True)
    estimator = make_estimator(estimator_name)
    num_samples = 2 if estimator_name == "reinforce-loo" else 1
    optimizer = torch.optim.SGD([phi], lr=lr)
    history = [_expected_cost(phi.detach(), targets)]
    for _ in range(steps):
        optimizer.zero_grad()
        q = Independent(Bernoulli(logits=phi), 1)  # batch (CHAINS,): one cost per chain
        rp.expect(lambda b: ((b - targets) ** 2).sum(-1) + OFFSET, q, estimator, num_samples).sum().backward()
        optimizer.step()
        history.append(_expected_cost(phi.detach(), targets))
    return torch.stack(history)


def run(console: Console, folder: Path, report: Report, repeats: int, steps: int) -> dict[str, torch.Tensor]:
    targets = torch.tensor(TARGETS, dtype=torch.float64)
    problem = get_problem("bernoulli-offset", dims=len(TARGETS), offset=OFFSET, targets=list(TARGETS))
    refusal = _pathwise_refusal(problem)
    console.print(f"[bold]rp.Pathwise() on a Bernoulli:[/bold] {refusal}")
    table = compare(
        problem.f,
        problem.q,
        problem.params,
        {name: make_estimator(name) for name in ESTIMATORS},
        num_samples=1,
        repeats=repeats,
        exact=problem.exact,
        param_names=problem.param_names,
        title=problem.description,
    )
    console.print(compact(table))
    table.plot(folder / "variance-bernoulli.png")

    runs = {name: _optimise(name, targets, steps, lr=LEARNING_RATE) for name in ESTIMATORS[:3]}
    optimum = float(torch.minimum(targets**2, (1 - targets) ** 2).sum() + OFFSET)
    _plot(folder, runs, optimum)
    summary = ", ".join(
        f"{name} {float(costs[-1].mean()) - optimum:.4f} ({int((costs[-1] - optimum < 0.05).sum())}/{CHAINS})"
        for name, costs in runs.items()
    )
    text = (
        f"Expected cost above the optimum after {steps} SGD steps (lr {LEARNING_RATE}, one sample; "
        f"leave-one-out uses two), mean over {CHAINS} runs (runs within 0.05 of the optimum): {summary}. "
        f"The offset {OFFSET:g} multiplies every REINFORCE term, so without a baseline the steps "
        "are mostly noise; subtracting a baseline removes it."
    )
    console.print(text)
    report.heading("(c) Bernoulli latents: no pathwise gradient, and the score function needs a baseline")
    report.text(
        f"Model: {len(TARGETS)} independent bits b_i ~ Bernoulli(sigmoid(phi_i)), cost "
        f"f(b) = sum_i (b_i - t_i)^2 + {OFFSET:g} with targets t = {list(TARGETS)}. The exact "
        "gradient is d E[f] / d phi_i = sigmoid'(phi_i) ((1 - t_i)^2 - t_i^2). A bit has no "
        "differentiable path from noise, so z = mu + sigma * eps has no analogue here: only the "
        "score function, E[f(b) grad log q(b)], and the measure-valued derivative "
        "(f at b_i = 1 minus f at b_i = 0, which here is exact) apply."
    )
    report.text(f"`rp.Pathwise()` refuses: *{refusal}*")
    report.text(table.to_markdown())
    report.figure("variance-bernoulli.png", "Per-estimate variance on the Bernoulli problem")
    report.text(text)
    report.figure("bernoulli-optimisation.png", "Expected cost during SGD, by estimator")
    return runs


def _plot(folder: Path, runs: dict[str, torch.Tensor], optimum: float) -> None:
    plt = pyplot("the demo's plots")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, costs in runs.items():
        gap = (costs - optimum).numpy()
        line = ax.plot(gap.mean(1), label=f"{name} (mean of {CHAINS})")[0]
        ax.fill_between(range(len(gap)), gap.min(1), gap.max(1), color=line.get_color(), alpha=0.15)
    ax.set(
        xlabel="SGD step",
        ylabel="E[f] - optimum",
        yscale="log",
        title="Bernoulli latents: SGD by estimator\n(line: mean over runs; band: min to max)",
    )
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "bernoulli-optimisation.png", dpi=110)
    plt.close(fig)
