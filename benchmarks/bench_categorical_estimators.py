"""Gradient variance of the categorical estimators at an equal number of evaluations of ``f``.

Problems (``z_d ~ Categorical(logits)``, ``y_d`` its one-hot vector, ``t`` a fixed target):

* ``toy K=4 D=1`` / ``toy K=10 D=1``: one variable, ``f = sum_k (y_k - t_k)^2``,
  ``t = (0.45, 0.3, 0.15, 0.1)`` for K = 4, ``t`` = 0.45 then 0.55 spread evenly for K = 10;
* ``toy K=4 D=20`` / ``toy K=10 D=20``: 20 variables, ``f = mean_d sum_k (y_dk - t_k)^2`` (the
  categorical analogue of the Bernoulli toy: every variable's gradient sees the others' noise;
  20 x 10 is the shape of the categorical VAE);
* ``skewed K=10 D=20``: the same cost at non-uniform logits, drawn once from N(0, 1) (generator
  seed 1; each variable's probabilities differ, as in a model being trained);
* ``coupled K=4 D=3``: a cost with interactions, ``(z_0 - 1.2)^2 (z_1 + 0.5) - 0.7 z_0 z_2 +
  z_1 z_2^2`` on the category numbers.

Logits start at 0 (uniform) for the toys but ``skewed`` and at fixed non-uniform values for the
coupled cost. For each evaluation budget ``E`` every estimator is given the number of samples that costs ``E``
evaluations of ``f``: RLOO (``rp.ScoreFunction(LeaveOneOut())``) and CARMS ``E`` samples, ARSM
``E / (1 + K (K-1)/2)`` Dirichlet draws (it evaluates every swap), UnorderedSet ``E`` distinct
categories (only where ``E <= K``; its costs are per variable, so only on ``D = 1``).

Printed per row: the per-coordinate gradient variance (mean over the logits of the variance of
one estimate, from ``R`` independent estimates), its ratio to RLOO's at the same budget with the
ratio's standard error (the two variances come from independent runs; delta method), the ratio's
log in standard errors (``z``), the check "X <= RLOO" (``FAIL`` only when the ratio is above 1 by
more than 3 standard errors, one-sided false-alarm rate 1.3e-3 per row when the variances are
equal; ``pass (below)`` when it is below 1 by more than 3, ``pass (tie)`` otherwise), and for
ARSM the mean number of DISTINCT pseudo-action vectors per draw (what an ``f`` that caches
repeated configurations would evaluate; the row ``ARSM distinct`` compares ARSM with RLOO at that
many evaluations). Unbiasedness is checked against ``rp.Exact()`` on the way (max ``|z|`` over
coordinates). A summary per problem and estimator closes the output.

Run: python benchmarks/bench_categorical_estimators.py [--replicates 5000] [--seed 0]
(the same R for every problem; --replicates 20000 narrows the SE of the 20-variable ratios to ~0.01-0.02)
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Categorical

import reparam as rp
from reparam.baselines import LeaveOneOut

THRESHOLD = 3.0  # standard errors of the log ratio for a FAIL / a "below"


@dataclass
class Problem:
    name: str
    logits: Tensor  # (D, K)
    cost: Callable[[Tensor], Tensor]  # (n, R, D) category numbers -> (n, R)
    per_variable: bool = False  # cost is a sum of per-variable costs (UnorderedSet can run)


@dataclass
class Row:
    problem: str
    budget: int
    name: str
    ratio: float
    se: float  # of the ratio
    z: float  # log ratio / its standard error


def _target(k: int) -> Tensor:
    if k == 4:
        return torch.tensor([0.45, 0.3, 0.15, 0.1], dtype=torch.float64)
    return torch.cat([torch.tensor([0.45]), torch.full((k - 1,), 0.55 / (k - 1))]).double()


def _table(k: int) -> Tensor:
    """Cost of each category, ``sum_k (e_c - t)_k^2``."""
    return ((torch.eye(k, dtype=torch.float64) - _target(k)) ** 2).sum(-1)


def _toy(k: int, d: int, skewed: bool = False) -> Problem:
    table = _table(k)

    def cost(z: Tensor) -> Tensor:
        return table[z].mean(-1)

    logits = torch.zeros(d, k, dtype=torch.float64)
    if skewed:
        logits = torch.randn(d, k, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    name = f"{'skewed' if skewed else 'toy'} K={k} D={d}"
    return Problem(name, logits, cost, d == 1)


def _coupled() -> Problem:
    logits = torch.tensor(
        [[0.2, -0.4, 0.9, 0.1], [1.0, 0.1, -0.6, 0.3], [0.0, 0.5, -0.2, -1.0]], dtype=torch.float64
    )

    def cost(z: Tensor) -> Tensor:
        z = z.to(torch.float64)
        z0, z1, z2 = z[..., 0], z[..., 1], z[..., 2]
        return (z0 - 1.2) ** 2 * (z1 + 0.5) - 0.7 * z0 * z2 + z1 * z2**2

    return Problem("coupled K=4 D=3", logits, cost)


def estimates(
    problem: Problem, estimator: object, num_samples: int, replicates: int, chunk: int = 4000
) -> tuple[Tensor, Tensor]:
    """``R`` independent gradient estimates ``(R, D, K)`` and every input ``f`` received
    (``(rows, R, D)``), computed ``chunk`` replicates at a time to bound the memory."""
    grads, inputs = [], []
    for start in range(0, replicates, chunk):
        seen: list[Tensor] = []

        def f(z: Tensor, seen: list[Tensor] = seen) -> Tensor:
            seen.append(z)
            c = problem.cost(z)
            return c.unsqueeze(-1) if problem.per_variable and isinstance(estimator, rp.UnorderedSet) else c

        d, k = problem.logits.shape
        size = min(chunk, replicates - start)
        leaf = problem.logits.expand(size, d, k).clone().requires_grad_(True)
        q = Categorical(logits=leaf)  # UnorderedSet on D = 1: one cost per variable, (k, R, 1)
        value = estimator(f, q, num_samples)  # type: ignore[operator]
        grads.append(torch.autograd.grad(value.sum(), leaf)[0])
        inputs.append(torch.cat([s.reshape(-1, *s.shape[-2:]) for s in seen]))
    return torch.cat(grads), torch.cat(inputs, dim=1)


def exact_gradient(problem: Problem) -> Tensor:
    """By ``rp.Exact()`` enumeration of each variable (a toy's cost is a mean of per-variable
    costs: variable ``d`` alone, divided by ``D``); the coupled cost jointly."""
    d, k = problem.logits.shape
    if problem.name.startswith("coupled"):
        leaf = problem.logits.clone().requires_grad_(True)
        value = rp.Exact()(problem.cost, Categorical(logits=leaf), 1)
        return torch.autograd.grad(value, leaf)[0]
    table = _table(k)
    rows = []
    for logits in problem.logits:
        leaf = logits.unsqueeze(0).clone().requires_grad_(True)
        value = rp.Exact()(lambda z: table[z].sum(-1), Categorical(logits=leaf), 1)
        rows.append(torch.autograd.grad(value, leaf)[0][0] / d)
    return torch.stack(rows)


def spread(grad: Tensor) -> tuple[float, float]:
    """Per-coordinate variance (mean over coordinates) and the relative standard error of it."""
    dev = (grad - grad.mean(0)).flatten(1).pow(2).mean(1)  # per replicate
    r = grad.shape[0]
    var = float(dev.mean()) * r / (r - 1)
    return var, float(dev.std()) / float(dev.mean()) / math.sqrt(r)


def max_abs_z(grad: Tensor, exact: Tensor) -> float:
    """Unbiasedness: ``max |mean - exact| / stderr`` (``inf`` if a constant coordinate is off)."""
    stderr = grad.std(0) / math.sqrt(grad.shape[0])
    noisy = stderr > 1e-12  # a zero-variance coordinate is compared exactly
    if not torch.allclose(grad.mean(0)[~noisy], exact[~noisy], atol=1e-9):
        return math.inf
    return float(((grad.mean(0) - exact)[noisy] / stderr[noisy]).abs().max()) if noisy.any() else 0.0


def distinct_pseudo_actions(rows: Tensor, swaps: int) -> float:
    """Mean number of distinct pseudo-action vectors per ARSM draw (rows: ``(S n, R, D)``, swap
    major), compared exactly row by row."""
    z = rows.reshape(swaps, -1, rows.shape[-1])  # (S, n R, D)
    return sum(len(torch.unique(z[:, i], dim=0)) for i in range(z.shape[1])) / z.shape[1]


def check(name: str, ratio: float, z: float) -> str:
    if z > THRESHOLD:
        return f"FAIL: {name} > RLOO"
    return "pass (below)" if z < -THRESHOLD else "pass (tie)"


def compare(
    problem: Problem, budget: int, name: str, var: float, rel: float, base: tuple[float, float]
) -> Row:
    ratio = var / base[0]
    se_log = math.sqrt(rel**2 + base[1] ** 2)
    return Row(problem.name, budget, name, ratio, ratio * se_log, math.log(ratio) / se_log)


def line(row: Row, n: int, var: float, bias_z: float | str, distinct: str = "") -> str:
    label = row.name.split()[0]
    verdict = check(label, row.ratio, row.z) if row.name != "RLOO" else ""
    ratio = f"{1.0:6.3f}" + " " * 15
    if row.name != "RLOO":
        ratio = f"{row.ratio:6.3f} ± {row.se:5.3f} {row.z:6.1f}"
    bias = f"{bias_z:7.2f}" if isinstance(bias_z, float) else f"{bias_z:>7}"
    return (f"{row.problem:16} {row.budget:4d} {row.name:13} {n:4d} {var:11.4e} {ratio} {bias} "
            f"{distinct:>8}  {verdict}")


def summary(rows: list[Row]) -> None:
    print("\nSummary: ratio to RLOO at equal evaluations of f, min - max over the budgets (± SE of each)")
    order = ["CARMS", "ARSM", "ARSM distinct", "UnorderedSet"]
    problems = list(dict.fromkeys(r.problem for r in rows))
    for name in order:
        for problem in problems:
            mine = [r for r in rows if r.problem == problem and r.name == name]
            if not mine:
                continue
            lo, hi = min(mine, key=lambda r: r.ratio), max(mine, key=lambda r: r.ratio)
            verdicts = [check(name, r.ratio, r.z) for r in mine]
            fails = sum(v.startswith("FAIL") for v in verdicts)
            below = sum(v == "pass (below)" for v in verdicts)
            span = f"{lo.ratio:6.3f} ± {lo.se:5.3f}"
            if len(mine) > 1:
                span += f" - {hi.ratio:6.3f} ± {hi.se:5.3f}"
            outcome = "FAIL" if fails else "pass"
            print(f"  {name.split()[0] + ' <= RLOO':19} {problem:16} {name:13} {span:33} {outcome}: "
                  f"{below} of {len(mine)} budgets below by > {THRESHOLD:g} SE, {fails} above")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    problems = [_toy(4, 1), _toy(10, 1), _toy(4, 20), _toy(10, 20), _toy(10, 20, skewed=True), _coupled()]
    print(f"R = {args.replicates} independent estimates per row; ratio = variance / RLOO's at the same E "
          f"± its SE, z = log(ratio) / SE; check fails above {THRESHOLD:g} SE")
    print(f"{'problem':16} {'E':>4} {'estimator':13} {'n':>4} {'var/coord':>11} {'ratio ± SE':>14} "
          f"{'z':>6} {'max|z|':>7} {'distinct':>8}  check")
    rows: list[Row] = []
    for problem in problems:
        k = problem.logits.shape[-1]
        exact = exact_gradient(problem)
        swaps = 1 + k * (k - 1) // 2
        replicates = args.replicates
        for budget in sorted({2, 3, k, swaps}):
            runs: list[tuple[str, object, int]] = [("RLOO", rp.ScoreFunction(LeaveOneOut()), budget)]
            runs.append(("CARMS", rp.CARMS(), budget))
            if budget % swaps == 0:
                runs.append(("ARSM", rp.ARSM(), budget // swaps))
            if problem.per_variable and budget <= k:
                runs.append(("UnorderedSet", rp.UnorderedSet(), budget))
            base = (1.0, 0.0)
            for name, estimator, n in runs:
                grad, seen = estimates(problem, estimator, n, replicates)
                var, rel = spread(grad)
                if name == "RLOO":
                    base = (var, rel)
                row = compare(problem, budget, name, var, rel, base)
                rows.append(row)
                distinct = f"{distinct_pseudo_actions(seen, swaps):8.2f}" if name == "ARSM" else ""
                print(line(row, n, var, max_abs_z(grad, exact), distinct))
                if name == "ARSM" and round(float(distinct)) < budget:
                    # the paper's accounting: only the distinct pseudo-actions are evaluated
                    m = round(float(distinct))
                    other, _ = estimates(problem, rp.ScoreFunction(LeaveOneOut()), m, replicates)
                    var_m, rel_m = spread(other)
                    print(line(Row(problem.name, m, "RLOO", 1.0, 0.0, 0.0), m, var_m, ""))
                    row = compare(problem, m, "ARSM distinct", var, rel, (var_m, rel_m))
                    rows.append(row)
                    print(line(row, n, var, ""))
    summary(rows)


if __name__ == "__main__":
    main()
