"""Clipped-Gaussian stochastic gate (Yamada, Lindenbaum, Negahban & Kluger 2020)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Number
from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints
from torch.distributions.utils import broadcast_all
from torch.special import log_ndtr, ndtr

from reparam.distributions._checks import check_finite, check_positive_finite, validation_enabled
from reparam.distributions.hard_concrete import gate_log_prob

_Shape = torch.Size | Sequence[int]
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class GaussianGate(Distribution):
    r"""Stochastic gate :math:`z = \min(1, \max(0, \mu + \sigma\varepsilon))`,
    :math:`\varepsilon \sim N(0, 1)`, with atoms at 0 and 1.

    In closed form, with :math:`\Phi` the standard normal CDF:

    .. math::
        P(z = 0) = \Phi(-\mu/\sigma), \quad P(z = 1) = \Phi((\mu - 1)/\sigma), \quad
        P(z \ne 0) = \Phi(\mu/\sigma), \quad F(x) = \Phi((x - \mu)/\sigma),\ 0 \le x < 1.

    :meth:`prob_nonzero` is the paper's differentiable surrogate of the L0 norm
    (:math:`\sum_d \Phi(\mu_d/\sigma)`). ``log_prob``, as for :class:`HardConcrete`, is the
    log-density with respect to :math:`\delta_0 + \text{Lebesgue on } (0, 1) + \delta_1`:
    :math:`\log P(z=0)` at exactly 0, :math:`\log P(z=1)` at exactly 1, the normal
    log-density inside and :math:`-\infty` outside. ``rsample`` is pathwise (zero gradient where
    the clamp is active).

    Args:
        loc: :math:`\mu` (finite).
        scale: :math:`\sigma > 0` (the paper fixes 0.5 during training).

    Reference: Yamada, Lindenbaum, Negahban & Kluger, "Feature Selection using Stochastic
    Gates", ICML 2020.

    Example::

        >>> gate = rp.distributions.GaussianGate(torch.tensor([0.5, -1.0]), 0.5)
        >>> [round(float(p), 4) for p in gate.prob_nonzero()]
        [0.8413, 0.0228]
        >>> tuple(gate.rsample((4,)).shape)
        (4, 2)
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "loc": constraints.real,
        "scale": constraints.positive,
    }
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, loc: Tensor | float, scale: Tensor | float, validate_args: bool | None = None) -> None:
        self.loc, self.scale = broadcast_all(loc, scale)
        batch = torch.Size() if isinstance(loc, Number) and isinstance(scale, Number) else self.loc.shape
        if validation_enabled(validate_args):
            check_finite("GaussianGate", loc=self.loc)
            check_positive_finite("GaussianGate", scale=self.scale)
        super().__init__(batch, validate_args=False)
        self._validate_args = validation_enabled(validate_args)

    def expand(self, batch_shape: _Shape, _instance: GaussianGate | None = None) -> GaussianGate:
        new: GaussianGate = self._get_checked_instance(GaussianGate, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        super(GaussianGate, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def prob_zero(self) -> Tensor:
        p: Tensor = ndtr(-self.loc / self.scale)  # typed Any by torch
        return p

    def prob_one(self) -> Tensor:
        p: Tensor = ndtr((self.loc - 1.0) / self.scale)  # typed Any by torch
        return p

    def prob_nonzero(self) -> Tensor:
        r""":math:`P(z \ne 0) = \Phi(\mu/\sigma)`: the expected L0 norm of the gate."""
        p: Tensor = ndtr(self.loc / self.scale)  # typed Any by torch
        return p

    def cdf(self, value: Tensor) -> Tensor:
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        out = ndtr((value - self.loc) / self.scale)
        out = torch.where(value < 0, torch.zeros_like(out), out)
        return torch.where(value >= 1, torch.ones_like(out), out)

    def log_prob(self, value: Tensor) -> Tensor:
        """See the class docstring: log-density w.r.t. ``delta_0 + Lebesgue + delta_1``."""
        if self._validate_args:
            self._validate_sample(value)
        xi = (value - self.loc) / self.scale
        log_density = -0.5 * xi * xi - _LOG_SQRT_2PI - torch.log(self.scale)
        log_p0 = log_ndtr(-self.loc / self.scale)
        log_p1 = log_ndtr((self.loc - 1.0) / self.scale)
        return gate_log_prob(value, log_p0, log_p1, log_density)

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return torch.clamp(self.loc + self.scale * eps, 0.0, 1.0)

    def __repr__(self) -> str:
        return f"GaussianGate(loc: {self.loc.size()}, scale: {self.scale.size()})"
