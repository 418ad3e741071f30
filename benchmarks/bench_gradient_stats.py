"""rp.gradient_stats(repeats=2000) batched vs a Python loop of 2000 estimates (target >= 10x).

For each case the loop is what one would write by hand: 2000 times
`torch.autograd.grad(estimator(f, q, n).sum(), params, retain_graph=True)`. gradient_stats
includes its own few timed single estimates (for `.seconds`). Paired rounds alternate the
order; the table shows median wall times and the median per-round speed-up. The last case
(a moving-average baseline) keeps state between calls, so gradient_stats loops on purpose.
Run: python benchmarks/bench_gradient_stats.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.distributions import Independent, Normal
from torch.nn.functional import binary_cross_entropy_with_logits as bce

import reparam as rp
from reparam.baselines import LeaveOneOut, MovingAverage
from reparam.problems import get_problem


@dataclass
class Case:
    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    q: torch.distributions.Distribution
    params: list[torch.Tensor]
    estimator: Callable[[], object]
    num_samples: int = 1


def cases() -> list[Case]:
    out = []
    for problem, estimator, label, n in [
        ("normal-quadratic", rp.Pathwise, "pathwise", 1),
        ("normal-cos", rp.ScoreFunction, "reinforce", 1),
        ("exponential-sin", rp.MeasureValued, "measure-valued", 1),
        ("bernoulli-offset", lambda: rp.ScoreFunction(baseline=LeaveOneOut()), "reinforce-loo", 2),
    ]:
        p = get_problem(problem)
        out.append(Case(f"{problem}, {label}, N={n}", p.f, p.q, p.params, estimator, n))
    # Bayesian-logistic-regression-sized: 31 weights, 32 data points, 10 samples per estimate.
    features, labels = torch.randn(32, 31), (torch.rand(32) < 0.5).float()
    loc, log_scale = torch.zeros(31, requires_grad=True), torch.full((31,), -1.0, requires_grad=True)

    def nll(w: torch.Tensor) -> torch.Tensor:
        logits = w @ features.T
        return bce(logits, labels.expand_as(logits), reduction="none").sum(-1)

    q = Independent(Normal(loc, log_scale.exp()), 1)
    out.append(Case("logistic 31 dims, pathwise, N=10", nll, q, [loc, log_scale], rp.Pathwise, 10))
    out.append(Case("logistic 31 dims, reinforce, N=10", nll, q, [loc, log_scale], rp.ScoreFunction, 10))
    p = get_problem("normal-quadratic")
    out.append(
        Case(
            "normal-quadratic, reinforce-ma (stateful: loops)",
            p.f,
            p.q,
            p.params,
            lambda: rp.ScoreFunction(baseline=MovingAverage()),
        )
    )
    return out


def python_loop(case: Case, repeats: int) -> float:
    estimator = case.estimator()
    start = time.perf_counter()
    grads = []
    for _ in range(repeats):
        surrogate = estimator(case.f, case.q, case.num_samples)
        grads.append(torch.autograd.grad(surrogate.sum(), case.params, retain_graph=True))
    return time.perf_counter() - start


def batched(case: Case, repeats: int) -> tuple[float, str]:
    start = time.perf_counter()
    stats = rp.gradient_stats(
        case.f, case.q, case.params, case.estimator(), num_samples=case.num_samples, repeats=repeats
    )
    return time.perf_counter() - start, stats.method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s); repeats={args.repeats}; "
        f"{args.rounds} paired rounds; median wall time"
    )
    header = ["case", "python loop", "gradient_stats", "method", "speed-up", "target >= 10x"]
    rows = []
    for case in cases():
        batched(case, 20)  # warm-up (first use of batched backward)
        python_loop(case, 20)
        loops, fast, ratios, method = [], [], [], ""
        for r in range(args.rounds):
            if r % 2 == 0:
                a = python_loop(case, args.repeats)
                b, method = batched(case, args.repeats)
            else:
                b, method = batched(case, args.repeats)
                a = python_loop(case, args.repeats)
            loops.append(a)
            fast.append(b)
            ratios.append(a / b)
        speedup = statistics.median(ratios)
        verdict = "ok" if speedup >= 10 else ("n/a (stateful)" if method == "loop" else "missed")
        rows.append(
            [
                case.name,
                f"{statistics.median(loops):.3f} s",
                f"{statistics.median(fast):.4f} s",
                method,
                f"{speedup:.1f}x",
                verdict,
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


if __name__ == "__main__":
    main()
