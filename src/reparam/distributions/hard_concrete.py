"""Hard concrete gate: a stretched and clamped binary concrete (Louizos, Welling & Kingma 2018)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Number
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.utils import broadcast_all

from reparam.distributions._checks import check_positive_finite, validation_enabled

_Shape = torch.Size | Sequence[int]


def open_unit_uniform(shape: _Shape, like: Tensor) -> Tensor:
    """Uniform draws strictly inside (0, 1) with ``like``'s dtype and device: ``log u`` and
    ``log(1 - u)`` are finite."""
    info = torch.finfo(like.dtype)
    u = torch.rand(shape, dtype=like.dtype, device=like.device)
    return u.clamp(info.tiny, 1.0 - info.eps)


def gate_log_prob(value: Tensor, log_p0: Tensor, log_p1: Tensor, log_density: Tensor) -> Tensor:
    """Log-density of a gate on [0, 1] with respect to ``delta_0 + Lebesgue + delta_1``:
    ``log P(z=0)`` at 0, ``log P(z=1)`` at 1, the continuous part's log-density inside and
    ``-inf`` outside."""
    inside = (value > 0) & (value < 1)
    out = torch.where(inside, log_density, torch.full_like(log_density, -math.inf))
    out = torch.where(value == 0, log_p0, out)
    return torch.where(value == 1, log_p1, out)


class HardConcrete(Distribution):
    r"""Hard concrete gate :math:`z \in [0, 1]` with atoms at 0 and 1, for L0 regularisation.

    With :math:`u \sim U(0, 1)`, logits :math:`\alpha`, temperature :math:`\beta` and the
    stretch interval :math:`(l, r)`, :math:`l < 0 < 1 < r`:

    .. math::
        s = \sigma\!\left(\frac{\log u - \log(1 - u) + \alpha}{\beta}\right), \qquad
        z = \min(1, \max(0, l + (r - l) s)).

    The gate distribution in closed form (:math:`L` standard logistic, so
    :math:`P(s \le x) = \sigma(\beta\,\mathrm{logit}(x) - \alpha)`):

    .. math::
        P(z = 0) = \sigma\!\left(\beta \log\frac{-l}{r} - \alpha\right), \quad
        P(z = 1) = \sigma\!\left(\alpha - \beta \log\frac{1 - l}{r - 1}\right), \quad
        F(x) = \sigma\!\left(\beta \log\frac{x - l}{r - x} - \alpha\right),\ 0 \le x < 1,

    so the expected L0 norm is :meth:`prob_nonzero`
    :math:`= \sigma(\alpha - \beta \log(-l/r))`, differentiable in :math:`\alpha`.

    ``log_prob`` (a choice, since the law is mixed): the log-density with respect to
    :math:`\delta_0 + \text{Lebesgue on } (0, 1) + \delta_1`, i.e. :math:`\log P(z=0)` at
    exactly 0, :math:`\log P(z=1)` at exactly 1, the continuous part's log-density
    :math:`\log F'(x)` inside and :math:`-\infty` outside [0, 1]. ``rsample`` is pathwise
    (zero gradient where the clamp is active, as in the paper).

    Args:
        logits: :math:`\alpha` (``log_alpha`` in the paper), any real (``+-inf`` allowed).
        temperature: :math:`\beta > 0` (the paper uses 2/3).
        low, high: the stretch interval, ``low < 0`` and ``high > 1`` (defaults -0.1, 1.1).

    Reference: Louizos, Welling & Kingma, "Learning Sparse Neural Networks through L0
    Regularization", ICLR 2018.

    Example::

        >>> gate = rp.distributions.HardConcrete(torch.zeros(3), temperature=2 / 3)
        >>> z = gate.rsample((5,))
        >>> bool(((z >= 0) & (z <= 1)).all()), tuple(z.shape)
        (True, (5, 3))
        >>> round(float(gate.prob_nonzero()[0]), 4)
        0.8318
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "logits": constraints.real,
        "temperature": constraints.positive,
    }
    support = constraints.unit_interval
    has_rsample = True

    def __init__(
        self,
        logits: Tensor | float,
        temperature: Tensor | float,
        low: float = -0.1,
        high: float = 1.1,
        validate_args: bool | None = None,
    ) -> None:
        if not (isinstance(low, Number) and isinstance(high, Number) and low < 0 and high > 1):
            raise ValueError(
                f"HardConcrete: low must be a number < 0 and high a number > 1, got low={low!r}, "
                f"high={high!r}; pass e.g. low=-0.1, high=1.1 (the stretch must reach past 0 and 1 "
                "for the gate to have atoms at exactly 0 and 1)."
            )
        self.low, self.high = float(low), float(high)
        self.logits, self.temperature = broadcast_all(logits, temperature)
        scalars = isinstance(logits, Number) and isinstance(temperature, Number)
        batch = torch.Size() if scalars else self.logits.shape
        if validation_enabled(validate_args):
            if bool(torch.isnan(self.logits).any()):
                raise ValueError(
                    "HardConcrete: logits must not be NaN; pass real logits (+-inf allowed for a "
                    "gate that is always 1 / always 0)."
                )
            check_positive_finite("HardConcrete", temperature=self.temperature)
        super().__init__(batch, validate_args=False)
        self._validate_args = validation_enabled(validate_args)

    def expand(self, batch_shape: _Shape, _instance: HardConcrete | None = None) -> HardConcrete:
        new: HardConcrete = self._get_checked_instance(HardConcrete, _instance)
        batch_shape = torch.Size(batch_shape)
        new.logits = self.logits.expand(batch_shape)
        new.temperature = self.temperature.expand(batch_shape)
        new.low, new.high = self.low, self.high
        super(HardConcrete, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _logit_of(self, x: float | Tensor) -> Tensor:
        """``beta * log((x - l)/(r - x)) - alpha``: ``F(x) = sigmoid`` of it."""
        ratio = torch.log(torch.as_tensor((x - self.low) / (self.high - x), dtype=self.logits.dtype))
        return self.temperature * ratio.to(self.logits.device) - self.logits

    def prob_zero(self) -> Tensor:
        """:math:`P(z = 0) = \\sigma(\\beta \\log(-l/r) - \\alpha)`."""
        return torch.sigmoid(self._logit_of(0.0))

    def prob_one(self) -> Tensor:
        """:math:`P(z = 1) = \\sigma(\\alpha - \\beta \\log((1 - l)/(r - 1)))`."""
        return torch.sigmoid(-self._logit_of(1.0))

    def prob_nonzero(self) -> Tensor:
        """:math:`P(z \\ne 0) = \\sigma(\\alpha - \\beta \\log(-l/r))`: the expected L0 norm."""
        return torch.sigmoid(-self._logit_of(0.0))

    def cdf(self, value: Tensor) -> Tensor:
        """:math:`P(z \\le x)`: 0 below 0, :math:`\\sigma(\\beta\\log\\frac{x-l}{r-x} - \\alpha)` on
        [0, 1), 1 from 1 on."""
        value = torch.as_tensor(value, dtype=self.logits.dtype, device=self.logits.device)
        x = value.clamp(0.0, 0.5 * (1.0 + self.high))  # inside (l, r): the log stays finite
        t = self.temperature * torch.log((x - self.low) / (self.high - x)) - self.logits
        out = torch.where(value < 0, torch.zeros_like(t), torch.sigmoid(t))
        return torch.where(value >= 1, torch.ones_like(out), out)

    def log_prob(self, value: Tensor) -> Tensor:
        """See the class docstring: log-density w.r.t. ``delta_0 + Lebesgue + delta_1``."""
        if self._validate_args:
            self._validate_sample(value)
        x = value.clamp(0.0, 1.0)
        t = self.temperature * torch.log((x - self.low) / (self.high - x)) - self.logits
        # F'(x) = beta * sigmoid(t) sigmoid(-t) * (1/(x - l) + 1/(r - x))
        log_density = (
            torch.log(self.temperature)
            + F.logsigmoid(t)
            + F.logsigmoid(-t)
            + math.log(self.high - self.low)
            - torch.log(x - self.low)
            - torch.log(self.high - x)
        )
        log_p0 = F.logsigmoid(self._logit_of(0.0))
        log_p1 = F.logsigmoid(-self._logit_of(1.0))
        return gate_log_prob(value, log_p0, log_p1, log_density)

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        u = open_unit_uniform(shape, self.logits)
        a = torch.log(u) - torch.log1p(-u) + self.logits
        # an infinite logit gives s = 0 or 1 exactly with zero gradient (no inf * 0 in the
        # temperature's derivative)
        finite = torch.isfinite(a.detach())
        safe = torch.where(finite, a, torch.zeros_like(a))
        s = torch.where(finite, torch.sigmoid(safe / self.temperature), (a > 0).to(a.dtype))
        return torch.clamp(self.low + (self.high - self.low) * s, 0.0, 1.0)

    def __repr__(self) -> str:
        return (
            f"HardConcrete(logits: {self.logits.size()}, temperature: {self.temperature.size()}, "
            f"low={self.low}, high={self.high})"
        )
