"""Compiled / eager step time for every estimator (CPU inductor, ``fullgraph=True``).

A step is ``rp.expect(...)`` on a small problem (tests/estimators/estimator_cases.py) plus
``backward``. Each estimator is compiled once (not timed), then eager and compiled steps are
timed in alternating rounds; the table gives the median step time of each and their ratio
(< 1: the compiled step is faster).

    .venv/bin/python benchmarks/bench_compile.py            # every estimator
    .venv/bin/python benchmarks/bench_compile.py --rounds 5 --steps 20 --only DisARM Pathwise
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch._dynamo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "estimators"))
from estimator_cases import CASES, forward, params


def _time(step, leaves, steps: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(steps):
        for leaf in leaves:
            leaf.grad = None
        step(*leaves).sum().backward()
    return (time.perf_counter() - start) / steps


def paired_rounds(name: str, eager_round: Callable[[], float], compiled_round: Callable[[], float],
                  rounds: int) -> None:
    """Alternate ``rounds`` eager and compiled timing rounds and print the medians and their
    ratio compiled / eager (shared with bench_compile_layers.py)."""
    eager_times, compiled_times = [], []
    for _ in range(rounds):
        eager_times.append(eager_round())
        compiled_times.append(compiled_round())
    e, c = statistics.median(eager_times), statistics.median(compiled_times)
    print(f"{name:42s} {1e3 * e:9.3f} {1e3 * c:12.3f} {c / e:7.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--backend", default="inductor")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, backend={args.backend}, threads={torch.get_num_threads()}")
    print(f"{'estimator':42s} {'eager ms':>9s} {'compiled ms':>12s} {'ratio':>7s}")
    for name in args.only or sorted(CASES):
        torch._dynamo.reset()  # one closure code object serves every case: start its cache afresh
        make, family = CASES[name]
        leaves = params(family)
        eager = forward(make(), family)
        compiled = torch.compile(forward(make(), family), fullgraph=True, backend=args.backend)
        for step in (eager, compiled):  # warm-up (and the compilation)
            _time(step, leaves, 2)
        paired_rounds(
            name,
            lambda e=eager, x=leaves: _time(e, x, args.steps),
            lambda c=compiled, x=leaves: _time(c, x, args.steps),
            args.rounds,
        )


if __name__ == "__main__":
    main()
