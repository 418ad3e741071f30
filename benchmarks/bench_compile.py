"""Compiled / eager step time for every estimator (CPU inductor, ``fullgraph=True``), under
torch.compile's default settings and under the recommended ``rp.compile`` (the same, with
inductor's ``fallback_random``: ATen's random-number generators inside the graph).

A step is ``rp.expect(...)`` on a small problem (tests/estimators/estimator_cases.py) plus
``backward``. Each estimator is compiled once per setting (not timed), then eager and compiled
steps are timed in alternating rounds (eager, default, recommended, eager, ...; each round
``--steps`` steps and at least 50 ms); the table gives the median step time of each and, per
setting, the median over rounds of compiled / eager (< 1: the compiled step is faster); the
cases above 1.0 are listed at the end.

    .venv/bin/python benchmarks/bench_compile.py --rounds 5 --steps 20   # every estimator
    .venv/bin/python benchmarks/bench_compile.py --only DisARM Pathwise --settings recommended
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch._dynamo

import reparam as rp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "estimators"))
from estimator_cases import CASES, forward, params

SETTINGS = ("default", "recommended")


def compile_with(setting: str, fn: Callable[..., torch.Tensor], dynamic: dict[str, bool | None],
                 backend: str = "inductor") -> Callable[..., torch.Tensor]:
    """``default``: ``torch.compile(fn, fullgraph=True)``; ``recommended``: ``rp.compile(fn)``;
    ``dynamic``: ``{}`` or ``{"dynamic": ...}`` for both (shared with bench_compile_layers.py)."""
    if setting == "default":
        return torch.compile(fn, fullgraph=True, backend=backend, **dynamic)  # type: ignore[no-any-return]
    return rp.compile(fn, backend=backend, **dynamic)


def _time(step, leaves, steps: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(steps):
        for leaf in leaves:
            leaf.grad = None
        step(*leaves).sum().backward()
    return (time.perf_counter() - start) / steps


def header(what: str, settings: tuple[str, ...]) -> None:
    """The table's first line (shared with bench_compile_layers.py)."""
    columns = "".join(f" {s[:11] + ' ms':>14s}" for s in settings)
    ratios = "".join(f" {s[:11] + '/eager':>17s}" for s in settings)
    print(f"{what:42s} {'eager ms':>9s}{columns}{ratios}", flush=True)


def paired_rounds(name: str, eager_round: Callable[[int], float],
                  compiled_rounds: list[Callable[[int], float]], rounds: int, steps: int,
                  min_round_s: float = 0.05) -> list[float]:
    """Alternate ``rounds`` eager and compiled timing rounds (eager, each compiled variant,
    eager, ...) of at least ``steps`` steps and ``min_round_s`` seconds each, print the median
    step times and, per variant, the median over rounds of the round's ratio compiled / eager;
    return those ratios (shared with bench_compile_layers.py).

    Pairing each compiled round with the eager round just before it cancels the slow drifts
    of a shared machine's load; rounds of at least 50 ms keep a microsecond step from being
    timed within one scheduler slice."""
    steps = max(steps, math.ceil(min_round_s / max(eager_round(steps), 1e-7)))
    eager_times: list[float] = []
    compiled_times: list[list[float]] = [[] for _ in compiled_rounds]
    for _ in range(rounds):
        eager_times.append(eager_round(steps))
        for times, run in zip(compiled_times, compiled_rounds, strict=True):
            times.append(run(steps))
    medians = [statistics.median(times) for times in compiled_times]
    ratios = [statistics.median(c / e for c, e in zip(times, eager_times, strict=True))
              for times in compiled_times]
    columns = "".join(f" {1e3 * c:14.3f}" for c in medians)
    print(f"{name:42s} {1e3 * statistics.median(eager_times):9.3f}{columns}"
          + "".join(f" {r:17.2f}" for r in ratios), flush=True)
    return ratios


def summary(settings: tuple[str, ...], ratios: dict[str, list[float]]) -> None:
    """Per setting, the cases whose compiled step is slower than eager (shared)."""
    for i, setting in enumerate(settings):
        slower = [f"{name} ({r[i]:.2f})" for name, r in ratios.items() if r[i] > 1.0]
        print(f"{setting}: compiled/eager > 1.0 in {len(slower)} of {len(ratios)}: "
              + (", ".join(slower) or "none"))


def parse_dynamic(text: str) -> dict[str, bool | None]:
    """``--dynamic`` default / none / true / false as keyword arguments (shared)."""
    if text.lower() == "default":
        return {}
    return {"dynamic": {"none": None, "true": True, "false": False}[text.lower()]}


def parse_common(doc: str | None, steps: int, only_help: str | None = None) -> argparse.Namespace:
    """The options both compile benchmarks take (``doc``: the script's docstring, for --help);
    seeds, sets the thread count, prints the setup."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--backend", default="inductor")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads (1: steadier on a shared machine, where a parallel "
                        "op's wait for a descheduled worker thread costs milliseconds)")
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--dynamic", default="default",
                        help="none, true or false: torch.compile's dynamic for both settings "
                        "(default: each setting's own, None for torch.compile, False for rp.compile)")
    parser.add_argument("--only", nargs="*", default=None, help=only_help)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, backend={args.backend}, threads={torch.get_num_threads()}, "
          f"dynamic={args.dynamic}; default: torch.compile(step, fullgraph=True); "
          "recommended: rp.compile(step)")
    return args


def main() -> None:
    args = parse_common(__doc__, steps=30)
    settings, dynamic = tuple(args.settings), parse_dynamic(args.dynamic)
    header("estimator", settings)
    ratios: dict[str, list[float]] = {}
    for name in args.only or sorted(CASES):
        torch._dynamo.reset()  # one closure code object serves every case: start its cache afresh
        make, family = CASES[name]
        leaves = params(family)
        eager = forward(make(), family)
        # one estimator per variant (stateful baselines); one cache entry per setting (the
        # settings are different backends, which dynamo's guards tell apart)
        compiled = [compile_with(s, forward(make(), family), dynamic, args.backend) for s in settings]
        for step in (eager, *compiled):  # warm-up (and the compilation)
            _time(step, leaves, 2)
        ratios[name] = paired_rounds(
            name,
            lambda n, e=eager, x=leaves: _time(e, x, n),
            [lambda n, c=c, x=leaves: _time(c, x, n) for c in compiled],
            args.rounds,
            args.steps,
        )
    summary(settings, ratios)


if __name__ == "__main__":
    main()
