"""Per-coordinate gradient variance of the Bernoulli estimators at an equal number of
evaluations of f, on the Bernoulli toy (D = 200, t = 0.499; f(b) = mean_i (b_i - t)^2).

For each budget of ``E`` evaluations: ARMS(n = E), DisARM(E / 2 pairs), RLOO(E samples),
DoubleCV(E samples; coefficient chosen from 30 warm-up calls), ARM(E / 2 pairs). Each entry is
the variance of one estimate per coordinate, averaged over the D coordinates, in units of
c^2 = ((1 - 2t) / D)^2, the median over ``--repeats`` independent measurements of
``--replicates`` estimates each (float64).

Run: ``.venv/bin/python benchmarks/bench_bernoulli_estimators.py`` (``--phi`` for another
logit, ``--budgets 4 8``).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.distributions import Bernoulli

import reparam as rp
from reparam.baselines import LeaveOneOut
from reparam.problems.discrete import toy_cost


def variance(estimator: object, num_samples: int, d: int, t: float, phi: float, replicates: int) -> float:
    logits = torch.full((replicates, d), phi, dtype=torch.float64, requires_grad=True)
    value = estimator(toy_cost(t), Bernoulli(logits=logits), num_samples)  # type: ignore[operator]
    (g,) = torch.autograd.grad(value.sum(), logits)
    return float(g.var(0).mean())


def warmed_double_cv(num_samples: int, d: int, t: float, phi: float) -> rp.DoubleCV:
    est = rp.DoubleCV()
    for _ in range(30):
        logits = torch.full((32, d), phi, dtype=torch.float64, requires_grad=True)
        est(toy_cost(t), Bernoulli(logits=logits), num_samples)
    return est


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--D", type=int, default=200)
    parser.add_argument("--t", type=float, default=0.499)
    parser.add_argument("--phi", type=float, default=0.0)
    parser.add_argument("--budgets", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    c2 = ((1.0 - 2.0 * args.t) / args.D) ** 2
    print(f"Bernoulli toy D={args.D} t={args.t} phi={args.phi}: per-coordinate variance / c^2")
    print(f"(mean over coordinates, median of {args.repeats} x {args.replicates} estimates)")
    print(f"{'evals':>5} {'ARMS':>8} {'DisARM':>8} {'RLOO':>8} {'DoubleCV':>8} {'ARM':>8}  beta(DoubleCV)")
    for e in args.budgets:
        dcv = warmed_double_cv(e, args.D, args.t, args.phi)
        beta = dcv.coefficient_value
        frozen = rp.DoubleCV(beta)
        rows = {
            "ARMS": (rp.ARMS(), e),
            "DisARM": (rp.DisARM(), e // 2),
            "RLOO": (rp.ScoreFunction(baseline=LeaveOneOut()), e),
            "DoubleCV": (frozen, e),
            "ARM": (rp.ARM(), e // 2),
        }
        cells = []
        for est, n in rows.values():
            runs = [variance(est, n, args.D, args.t, args.phi, args.replicates) for _ in range(args.repeats)]
            cells.append(statistics.median(runs) / c2)
        print(f"{e:>5} " + " ".join(f"{x:>8.3f}" for x in cells) + f"  {beta:+.2e}")


if __name__ == "__main__":
    main()
