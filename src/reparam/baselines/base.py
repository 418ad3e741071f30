"""The baseline / control-variate protocol used by score-function style estimators.

A baseline sees the (detached) costs of one estimate, the samples and ``q`` and returns a
:class:`ControlVariate`: ``value``, subtracted from the costs in the score term, and
``correction``, a zero-valued tensor whose gradient puts back what a sample-dependent control
variate took out (and trains a learned baseline). For a valid baseline ``value`` must not
depend on the sample it is paired with, so that ``E[value * grad log q] = 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor
from torch.distributions import Distribution

CostFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class ControlVariate:
    """What a baseline returns: ``value`` (broadcasts against costs) and a zero-valued
    ``correction`` added to the surrogate (``None`` when there is nothing to add)."""

    value: Tensor
    correction: Tensor | None = None


@runtime_checkable
class Baseline(Protocol):
    """``baseline(costs, z, q, f) -> ControlVariate``; ``min_samples`` samples needed.

    ``min_samples`` is a read-only member (a property here), so a frozen dataclass field
    (``LeaveOneOut``, ``DeltaMethod``), a class attribute (``MovingAverage``, ``Learned``) and a
    property all satisfy the protocol for type checkers.
    """

    @property
    def min_samples(self) -> int: ...

    def __call__(self, costs: Tensor, z: Tensor, q: Distribution, f: CostFn) -> ControlVariate: ...
