"""Invertible Gaussian reparameterization: softmax++ of a Gaussian (Potapczynski et al. 2020)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Number
from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, Normal, constraints
from torch.distributions.utils import broadcast_all

from reparam.distributions._checks import check_finite, check_positive_finite, validation_enabled

_Shape = torch.Size | Sequence[int]


class InvertibleGaussian(Distribution):
    r"""A relaxed one-hot on the simplex of ``K`` categories: softmax++ of a Gaussian in
    :math:`\mathbb{R}^{K-1}`.

    With :math:`x = \mu + \sigma \odot \varepsilon`, :math:`\varepsilon \sim N(0, I_{K-1})`,
    temperature :math:`\tau` and :math:`\delta > 0`:

    .. math::
        y_k = \frac{e^{x_k/\tau}}{\sum_{j<K} e^{x_j/\tau} + \delta}\ (k < K), \qquad
        y_K = \frac{\delta}{\sum_{j<K} e^{x_j/\tau} + \delta}.

    The map :math:`x \mapsto y` is a diffeomorphism onto the open simplex, with inverse
    :math:`x_k = \tau(\log y_k - \log y_K + \log\delta)` and Jacobian determinant
    :math:`\tau^{-(K-1)} \prod_{k=1}^{K} y_k` (of the first :math:`K - 1` coordinates), so

    .. math::
        \log p(y) = \log N(x(y); \mu, \sigma^2) + (K - 1)\log\tau - \sum_{k=1}^{K}\log y_k,

    a density of the first :math:`K - 1` coordinates (``log_prob``). By invertibility the KL
    between two of them with the same :math:`\tau` and :math:`\delta` is the KL of the
    Gaussians (registered with ``torch.distributions.kl.register_kl``, see
    :mod:`reparam.distributions.kl`). As :math:`\tau \to 0` the samples approach one-hot
    vectors (the argmax of :math:`(x, \log\delta)`).

    Args:
        loc, scale: :math:`\mu` and :math:`\sigma > 0`, shape ``(*batch, K - 1)``.
        temperature: :math:`\tau > 0` (a number).
        delta: :math:`\delta > 0` (a number, default 1).

    Reference: Potapczynski, Loaiza-Ganem & Cunningham, "Invertible Gaussian
    Reparameterization: Revisiting the Gumbel-Softmax", NeurIPS 2020.

    Example::

        >>> q = rp.distributions.InvertibleGaussian(torch.zeros(4), torch.ones(4), temperature=0.5)
        >>> y = q.rsample((2,))
        >>> tuple(y.shape), torch.allclose(y.sum(-1), torch.ones(2))
        ((2, 5), True)
        >>> p = rp.distributions.InvertibleGaussian(torch.ones(4), torch.ones(4), temperature=0.5)
        >>> round(float(torch.distributions.kl_divergence(q, p)), 4)  # 4 * 0.5
        2.0
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {
        "loc": constraints.independent(constraints.real, 1),
        "scale": constraints.independent(constraints.positive, 1),
    }
    support = constraints.simplex
    has_rsample = True

    def __init__(
        self,
        loc: Tensor,
        scale: Tensor | float,
        temperature: float,
        delta: float = 1.0,
        validate_args: bool | None = None,
    ) -> None:
        for name, value in (("temperature", temperature), ("delta", delta)):
            if not (isinstance(value, Number) and 0 < value < math.inf):
                raise ValueError(
                    f"InvertibleGaussian: {name} must be a positive finite number, got {value!r}; "
                    f"pass e.g. {name}={'0.5' if name == 'temperature' else '1.0'}."
                )
        if not isinstance(loc, Tensor) or loc.dim() < 1:
            raise ValueError(
                "InvertibleGaussian: loc must be a tensor shaped (*batch, K - 1) for K categories, "
                f"got {type(loc).__name__}; pass e.g. torch.zeros(K - 1)."
            )
        self.loc, self.scale = broadcast_all(loc, scale)
        self.temperature, self.delta = float(temperature), float(delta)
        if validation_enabled(validate_args):
            check_finite("InvertibleGaussian", loc=self.loc)
            check_positive_finite("InvertibleGaussian", scale=self.scale)
        event = torch.Size([self.loc.shape[-1] + 1])
        super().__init__(self.loc.shape[:-1], event, validate_args=False)
        self._validate_args = validation_enabled(validate_args)

    def expand(self, batch_shape: _Shape, _instance: InvertibleGaussian | None = None) -> InvertibleGaussian:
        new: InvertibleGaussian = self._get_checked_instance(InvertibleGaussian, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc = self.loc.expand(*batch_shape, self.loc.shape[-1])
        new.scale = self.scale.expand(*batch_shape, self.loc.shape[-1])
        new.temperature, new.delta = self.temperature, self.delta
        super(InvertibleGaussian, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def base(self) -> Normal:
        """The Gaussian :math:`N(\\mu, \\sigma^2)` of ``x`` (elementwise)."""
        return Normal(self.loc, self.scale, validate_args=False)

    def transform(self, x: Tensor) -> Tensor:
        """softmax++: ``x`` shaped ``(..., K - 1)`` to ``y`` on the simplex, ``(..., K)``."""
        last = torch.full_like(x[..., :1], math.log(self.delta))
        return torch.softmax(torch.cat([x / self.temperature, last], -1), -1)

    def inverse(self, y: Tensor) -> Tensor:
        """``x = tau (log y_{<K} - log y_K + log delta)``."""
        log_y = torch.log(y)
        return self.temperature * (log_y[..., :-1] - log_y[..., -1:] + math.log(self.delta))

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        return self.transform(self.base.rsample(torch.Size(sample_shape)))

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        x = self.inverse(value)
        k_minus_1 = value.shape[-1] - 1
        log_base: Tensor = self.base.log_prob(x).sum(-1)  # Normal.log_prob is unannotated
        return log_base + k_minus_1 * math.log(self.temperature) - torch.log(value).sum(-1)

    def __repr__(self) -> str:
        return (
            f"InvertibleGaussian(loc: {self.loc.size()}, scale: {self.scale.size()}, "
            f"temperature={self.temperature}, delta={self.delta})"
        )
