"""Named gradient-estimation problems shared by ``rp.compare``, ``reparam compare`` and the demo.

A problem is a builder returning a :class:`ProblemInstance`: the cost ``f``, a distribution
``q`` built from leaf parameters ``params``, and the exact gradient when one is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
