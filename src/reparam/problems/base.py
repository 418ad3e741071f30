"""Named gradient-estimation problems shared by ``rp.compare``, ``reparam compare`` and the demo.

A problem is a builder returning a :class:`ProblemInstance`: the cost ``f``, a distribution
``q`` built from leaf parameters ``params``, and the exact gradient when one is known.

Custom runners. A problem that does not fit the generic table of ``reparam compare`` (a
long-running study, several distributions, its own plots) registers a runner under its name:

    @register_runner("my-study")
    def run(request: CompareRequest) -> None:
        ...  # print tables (rich), write files under request.out

``reparam compare --problem my-study ...`` then calls the runner with the parsed command-line
arguments instead of building the generic table (the name needs no ``register_problem``
builder, though it may have one too). The runner owns its output: it should print what it
measured and, when ``request.out`` is set, write ``table.md`` and its plots there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor
from torch.distributions import Distribution

from reparam.estimators.base import CostFn


@dataclass
class ProblemInstance:
    """One concrete problem: ``grad_params E_q[f]`` with ``exact`` when known."""

    name: str
    f: CostFn
    q: Distribution
    params: list[Tensor]
    exact: tuple[Tensor, ...] | None = None
    param_names: list[str] = field(default_factory=list)
    description: str = ""
    default_estimators: tuple[str, ...] = ()


ProblemBuilder = Callable[..., ProblemInstance]
PROBLEMS: dict[str, ProblemBuilder] = {}


def register_problem(name: str) -> Callable[[ProblemBuilder], ProblemBuilder]:
    """Decorator: make a problem builder available by name to ``get_problem``."""

    def decorate(builder: ProblemBuilder) -> ProblemBuilder:
        if name in PROBLEMS:
            raise ValueError(f"problem {name!r} is already registered")
        PROBLEMS[name] = builder
        return builder

    return decorate


def get_problem(name: str, **options: object) -> ProblemInstance:
    """Build the named problem; unknown names list the registered ones."""
    if name not in PROBLEMS:
        known = ", ".join(sorted(PROBLEMS))
        raise KeyError(f"unknown problem {name!r}; choose one of: {known}")
    return PROBLEMS[name](**options)


@dataclass(frozen=True)
class CompareRequest:
    """The arguments of ``reparam compare`` handed to a custom runner."""

    problem: str
    estimators: tuple[str, ...] | None = None
    repeats: int = 2000
    num_samples: int = 1
    equal_cost: bool = False
    out: Path | None = None
    options: dict[str, object] = field(default_factory=dict)


CompareRunner = Callable[[CompareRequest], None]
RUNNERS: dict[str, CompareRunner] = {}


def register_runner(name: str) -> Callable[[CompareRunner], CompareRunner]:
    """Decorator: let ``runner(request)`` take over ``reparam compare --problem name``."""

    def decorate(runner: CompareRunner) -> CompareRunner:
        if name in RUNNERS:
            raise ValueError(f"a compare runner for {name!r} is already registered")
        RUNNERS[name] = runner
        return runner

    return decorate
