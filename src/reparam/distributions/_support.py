r"""Supports of distributions on an interval whose ends may be infinite, and their bijections.

torch describes ``[low, high]`` by the constraint that fits the kind of bounds:
``constraints.real`` (no bound), ``greater_than(low)``, ``less_than(high)`` or
``interval(low, high)``; ``biject_to`` maps each to an unconstrained space (identity,
``low + exp(x)``, ``high - exp(x)``, ``low + (high - low) sigmoid(x)``). An ``interval`` with an
infinite end breaks that map (``-inf + inf * sigmoid(x)`` is NaN), which is what Pyro's
autoguides and ``transform_to`` then see.

:func:`bounded_support` picks torch's constraint when every element of a batch has the same
kind of bounds. A batch that mixes kinds (``low = [0, -inf]``) fits none of them, so it gets
:class:`MixedBounds`, whose ``biject_to``/``transform_to`` (registered here in torch's
registries, which Pyro shares) applies the right map element by element:

.. math::
    y = \begin{cases} low + (high - low)\,\sigma(x) & \text{both finite} \\
    low + e^{x} & \text{only } low \text{ finite} \\ high - e^{-x} & \text{only } high
    \text{ finite} \\ x & \text{neither.} \end{cases}

Example:
    >>> import math
    >>> c = bounded_support(torch.tensor([0.0, -math.inf]), torch.tensor([1.0, math.inf]))
    >>> torch.distributions.biject_to(c)(torch.zeros(2))  # the interval's midpoint; identity
    tensor([0.5000, 0.0000])
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import constraints, transforms
from torch.distributions.constraint_registry import biject_to, transform_to
from torch.nn.functional import logsigmoid


def bound_kind(low: Tensor, high: Tensor) -> str:
    """``"real"``, ``"greater_than"``, ``"less_than"``, ``"interval"`` when every element has
    that kind of bounds, else ``"mixed"`` (one host sync)."""
    low_finite, high_finite = torch.isfinite(low), torch.isfinite(high)
    flags = torch.stack(
        [
            (~low_finite & ~high_finite).all(),
            (low_finite & ~high_finite).all(),
            (~low_finite & high_finite).all(),
            (low_finite & high_finite).all(),
        ]
    ).tolist()
    for kind, every in zip(("real", "greater_than", "less_than", "interval"), flags, strict=True):
        if every:
            return kind
    return "mixed"


def bounded_support(low: Tensor, high: Tensor, kind: str | None = None) -> constraints.Constraint:
    """The constraint for ``low <= z <= high`` (``kind`` from :func:`bound_kind` if known)."""
    kind = bound_kind(low, high) if kind is None else kind
    if kind == "real":
        return constraints.real
    if kind == "greater_than":
        return constraints.greater_than(low)
    if kind == "less_than":
        return constraints.less_than(high)
    if kind == "interval":
        return constraints.interval(low, high)
    return MixedBounds(low, high)


class MixedBounds(constraints.Constraint):
    """``low <= value <= high`` elementwise, each bound finite or infinite per element."""

    is_discrete = False
    event_dim = 0

    def __init__(self, lower_bound: Tensor, upper_bound: Tensor) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound
        super().__init__()

    def check(self, value: Tensor) -> Tensor:
        return (self.lower_bound <= value) & (value <= self.upper_bound)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class MixedBoundsTransform(transforms.Transform):
    """The elementwise bijection from the real line onto :class:`MixedBounds` (module docstring)."""

    domain = constraints.real
    bijective = True
    sign = +1

    def __init__(self, lower_bound: Tensor, upper_bound: Tensor, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.lower_bound, self.upper_bound = lower_bound, upper_bound
        low_finite, high_finite = torch.isfinite(lower_bound), torch.isfinite(upper_bound)
        self._both = low_finite & high_finite
        self._low_only = low_finite & ~high_finite
        self._high_only = ~low_finite & high_finite
        # Bounds with infinities zeroed: no inf ever enters arithmetic (or its gradient).
        self._low = torch.where(low_finite, lower_bound, torch.zeros_like(lower_bound))
        self._high = torch.where(high_finite, upper_bound, torch.zeros_like(upper_bound))

    @constraints.dependent_property(is_discrete=False)
    def codomain(self) -> constraints.Constraint:
        return MixedBounds(self.lower_bound, self.upper_bound)

    def with_cache(self, cache_size: int = 1) -> MixedBoundsTransform:
        if self._cache_size == cache_size:
            return self
        return MixedBoundsTransform(self.lower_bound, self.upper_bound, cache_size=cache_size)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MixedBoundsTransform)
            and bool((self.lower_bound == other.lower_bound).all())
            and bool((self.upper_bound == other.upper_bound).all())
        )

    def _pick(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x`` where ``mask``, 0 elsewhere (so the branch not taken cannot overflow)."""
        return torch.where(mask, x, torch.zeros_like(x))

    def _call(self, x: Tensor) -> Tensor:
        width = self._high - self._low
        both = self._low + width * torch.sigmoid(self._pick(x, self._both))
        low_only = self._low + torch.exp(self._pick(x, self._low_only))
        high_only = self._high - torch.exp(-self._pick(x, self._high_only))
        y = torch.where(self._both, both, x)
        y = torch.where(self._low_only, low_only, y)
        return torch.where(self._high_only, high_only, y)

    def _inverse(self, y: Tensor) -> Tensor:
        width = torch.where(self._both, self._high - self._low, torch.ones_like(self._high))
        p = self._pick((y - self._low) / width, self._both)
        both = torch.log(p) - torch.log1p(-p)
        low_only = torch.log(torch.where(self._low_only, y - self._low, torch.ones_like(y)))
        high_only = -torch.log(torch.where(self._high_only, self._high - y, torch.ones_like(y)))
        x = torch.where(self._both, both, y)
        x = torch.where(self._low_only, low_only, x)
        return torch.where(self._high_only, high_only, x)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        width = torch.where(self._both, self._high - self._low, torch.ones_like(self._high))
        xb = self._pick(x, self._both)
        both = torch.log(width) + logsigmoid(xb) + logsigmoid(-xb)
        out = torch.where(self._both, both, torch.zeros_like(x))
        out = torch.where(self._low_only, x, out)
        return torch.where(self._high_only, -x, out)


@biject_to.register(MixedBounds)
@transform_to.register(MixedBounds)
def _mixed_bounds_transform(constraint: MixedBounds) -> MixedBoundsTransform:
    return MixedBoundsTransform(constraint.lower_bound, constraint.upper_bound)


def strictly_inside(low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
    """Clamp bounds that keep samples in the support :func:`bounded_support` gives: ``low`` and
    ``high`` themselves for a finite interval (``interval`` is closed), the next representable
    number inward at a finite end of a one-sided bound (``greater_than``/``less_than`` are
    open, and their bijections send the bound itself to ``-inf``)."""
    low_finite, high_finite = torch.isfinite(low), torch.isfinite(high)
    lo = torch.where(low_finite & ~high_finite, torch.nextafter(low, high), low)
    hi = torch.where(high_finite & ~low_finite, torch.nextafter(high, low), high)
    return lo, hi

