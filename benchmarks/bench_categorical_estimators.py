"""Gradient variance of the categorical estimators at an equal number of evaluations of ``f``.

Problems (``z_d ~ Categorical(logits)``, ``y_d`` its one-hot vector, ``t`` a fixed target):

* ``toy K=4 D=1``: one variable, ``f = sum_k (y_k - t_k)^2``, ``t = (0.45, 0.3, 0.15, 0.1)``;
* ``toy K=4 D=20``: 20 variables, ``f = mean_d sum_k (y_dk - t_k)^2`` (the categorical analogue
  of the Bernoulli toy: every variable's gradient sees the others' noise);
* ``toy K=10 D=20``: the same with 10 categories (``t`` = 0.45, then 0.55 spread evenly), the
  shape of the 20 x 10 categorical VAE;
* ``coupled K=4 D=3``: a cost with interactions, ``(z_0 - 1.2)^2 (z_1 + 0.5) - 0.7 z_0 z_2 +
  z_1 z_2^2`` on the category numbers.

Logits start at 0 (uniform) for the toys and at fixed non-uniform values for the coupled cost.
For each evaluation budget ``E`` every estimator is given the number of samples that costs ``E``
evaluations of ``f``: RLOO (``rp.ScoreFunction(LeaveOneOut())``) and CARMS ``E`` samples, ARSM
``E / (1 + K (K-1)/2)`` Dirichlet draws (it evaluates every swap), UnorderedSet ``E`` distinct
categories (only where ``E <= K``; its costs are per variable, so only on ``D = 1``).

Printed per row: the per-coordinate gradient variance (mean over the logits of the variance of
one estimate, from ``R`` independent estimates), its ratio to RLOO at the same budget with the
standard error of the log ratio, and for ARSM the mean number of DISTINCT pseudo-action vectors
per draw (what an ``f`` that caches repeated configurations would evaluate). Unbiasedness is
checked against ``rp.Exact()`` on the way (max ``|z|`` over coordinates).

Run: python benchmarks/bench_categorical_estimators.py [--replicates 5000] [--seed 0]
(problems with more than 50 logits use a fifth of the replicates, at least 2000)
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


@dataclass
class Problem:
    name: str
    logits: Tensor  # (D, K)
    cost: Callable[[Tensor], Tensor]  # (n, R, D) category numbers -> (n, R)
    per_variable: bool = False  # cost is a sum of per-variable costs (UnorderedSet can run)


def _target(k: int) -> Tensor:
    if k == 4:
        return torch.tensor([0.45, 0.3, 0.15, 0.1], dtype=torch.float64)
    return torch.cat([torch.tensor([0.45]), torch.full((k - 1,), 0.55 / (k - 1))]).double()


def _toy(k: int, d: int) -> Problem:
    t = _target(k)
    table = ((torch.eye(k, dtype=torch.float64) - t) ** 2).sum(-1)  # cost of each category

    def cost(z: Tensor) -> Tensor:
        return table[z].mean(-1)

    return Problem(f"toy K={k} D={d}", torch.zeros(d, k, dtype=torch.float64), cost, d == 1)


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
    problem: Problem, estimator: object, num_samples: int, replicates: int
) -> tuple[Tensor, Tensor]:
    """``R`` independent gradient estimates ``(R, D, K)`` and every input ``f`` received."""
    seen: list[Tensor] = []

    def f(z: Tensor) -> Tensor:
        seen.append(z)
        c = problem.cost(z)
        return c.unsqueeze(-1) if problem.per_variable and isinstance(estimator, rp.UnorderedSet) else c

    d, k = problem.logits.shape
    leaf = problem.logits.expand(replicates, d, k).clone().requires_grad_(True)
    q = Categorical(logits=leaf)  # UnorderedSet on D = 1: one cost per variable, (k, R, 1)
    value = estimator(f, q, num_samples)  # type: ignore[operator]
    (grad,) = torch.autograd.grad(value.sum(), leaf)
    return grad, torch.cat([s.reshape(-1, *s.shape[-2:]) for s in seen])


def exact_gradient(problem: Problem) -> Tensor:
    """By ``rp.Exact()`` enumeration; a toy (a mean of identical per-variable costs at equal
    logits) from one variable, divided by ``D``."""
    d = problem.logits.shape[0]
    toy = problem.name.startswith("toy")
    leaf = problem.logits[:1 if toy else d].clone().requires_grad_(True)
    value = rp.Exact()(lambda z: problem.cost(z.unsqueeze(-2)).squeeze(-1), Categorical(logits=leaf), 1)
    (grad,) = torch.autograd.grad(value, leaf)
    return grad.expand(d, -1) / d if toy else grad


def spread(grad: Tensor) -> tuple[float, float]:
    """Per-coordinate variance (mean over coordinates) and the relative standard error of it."""
    dev = (grad - grad.mean(0)).flatten(1).pow(2).mean(1)  # per replicate
    r = grad.shape[0]
    var = float(dev.mean()) * r / (r - 1)
    return var, float(dev.std()) / float(dev.mean()) / math.sqrt(r)


def distinct_pseudo_actions(rows: Tensor, swaps: int, replicates: int) -> float:
    """Mean number of distinct pseudo-action vectors per ARSM draw (rows: ``(S n, R, D)``)."""
    z = rows.reshape(swaps, -1, replicates, rows.shape[-1]).double()
    code = (z * (1000.0 ** torch.arange(z.shape[-1], dtype=torch.float64) % 7919.0 + 1.0)).sum(-1)
    code = code.sort(0).values
    return float((1 + (code[1:] != code[:-1]).sum(0)).double().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    problems = [_toy(4, 1), _toy(4, 20), _toy(10, 20), _coupled()]
    print(f"R = {args.replicates} independent estimates per row; ratio = variance / RLOO's at the same E")
    print(f"{'problem':18} {'E':>4} {'estimator':14} {'n':>4} {'var/coord':>11} {'ratio':>7} "
          f"{'se(log r)':>9} {'max|z|':>7} {'distinct':>8}")
    for problem in problems:
        d, k = problem.logits.shape
        exact = exact_gradient(problem)
        swaps = 1 + k * (k - 1) // 2
        replicates = args.replicates if k * d < 50 else max(2000, args.replicates // 5)
        for budget in sorted({2, 3, k, swaps}):
            rows: list[tuple[str, object, int]] = [("RLOO", rp.ScoreFunction(LeaveOneOut()), budget)]
            rows.append(("CARMS", rp.CARMS(), budget))
            if budget % swaps == 0:
                rows.append(("ARSM", rp.ARSM(), budget // swaps))
            if problem.per_variable and budget <= k:
                rows.append(("UnorderedSet", rp.UnorderedSet(), budget))
            base = None
            for name, estimator, n in rows:
                grad, seen = estimates(problem, estimator, n, replicates)
                var, rel = spread(grad)
                if base is None:
                    base = (var, rel)
                ratio = var / base[0]
                se = math.sqrt(rel**2 + base[1] ** 2) if name != "RLOO" else 0.0
                stderr = grad.std(0) / math.sqrt(replicates)
                noisy = stderr > 1e-12  # a zero-variance coordinate is compared exactly
                z = float(((grad.mean(0) - exact)[noisy] / stderr[noisy]).abs().max()) if noisy.any() else 0.0
                if not torch.allclose(grad.mean(0)[~noisy], exact[~noisy], atol=1e-9):
                    z = math.inf
                distinct = ""
                if name == "ARSM":
                    distinct = f"{distinct_pseudo_actions(seen, swaps, replicates):8.2f}"
                print(f"{problem.name:18} {budget:4d} {name:14} {n:4d} {var:11.4e} {ratio:7.3f} "
                      f"{se:9.3f} {z:7.2f} {distinct:>8}")
                if name == "ARSM" and round(float(distinct)) < budget:
                    # the paper's accounting: only the distinct pseudo-actions are evaluated
                    m = round(float(distinct))
                    other, _ = estimates(problem, rp.ScoreFunction(LeaveOneOut()), m, replicates)
                    var_m, rel_m = spread(other)
                    print(f"{problem.name:18} {m:4d} {'RLOO':14} {m:4d} {var_m:11.4e} {1.0:7.3f} {0.0:9.3f}")
                    print(f"{problem.name:18} {m:4d} {'ARSM distinct':14} {n:4d} {var:11.4e} "
                          f"{var / var_m:7.3f} {math.sqrt(rel**2 + rel_m**2):9.3f}")


if __name__ == "__main__":
    main()
