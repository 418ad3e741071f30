"""Explicit reparameterization by inversion: ``z = F^{-1}(u; theta)``, ``u ~ U(0, 1)``."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from reparam.distributions._checks import check_univariate_continuous

_Shape = torch.Size | tuple[int, ...]


def open_uniform(shape: torch.Size, like: Tensor) -> Tensor:
    """Uniform draws in the open interval ``(0, 1)`` (``icdf`` is infinite at both ends)."""
    finfo = torch.finfo(like.dtype)
    u = torch.rand(shape, dtype=like.dtype, device=like.device)
    return u.clamp_(min=finfo.tiny, max=1.0 - finfo.eps / 2)


class InverseCDF(Distribution):
    r"""Pathwise gradients by inversion: ``z = dist.icdf(u)`` with ``u ~ U(0, 1)`` held fixed.

    .. math::
        z = F^{-1}(u; \theta), \qquad
        \frac{dz}{d\theta} = \frac{\partial F^{-1}(u; \theta)}{\partial \theta}
        = -\frac{\partial F(z; \theta)/\partial \theta}{p(z; \theta)},

    the same derivative as implicit reparameterization, obtained by autograd through
    ``dist.icdf``. Exact when ``icdf`` is (Devroye, "Non-Uniform Random Variate Generation",
    1986, ch. II.2); accuracy in the tails is that of ``dist.icdf``.

    Args:
        dist: a univariate continuous distribution with an ``icdf`` differentiable in its
            parameters (e.g. ``Normal``, ``Cauchy``, ``Uniform``, ``Exponential``, a truncated normal).
    """

    has_rsample = True
    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {}

    def __init__(self, dist: Distribution, validate_args: bool | None = None) -> None:
        self.base_dist = check_univariate_continuous(dist, "InverseCDF", "icdf")
        super().__init__(dist.batch_shape, dist.event_shape, validate_args=False)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return self.base_dist.support

    def expand(
        self, batch_shape: torch.Size | tuple[int, ...], _instance: InverseCDF | None = None
    ) -> InverseCDF:
        return InverseCDF(self.base_dist.expand(torch.Size(batch_shape)))

    def _like(self) -> Tensor:
        mean = self.base_dist.mean
        return mean if mean.is_floating_point() else mean.float()

    def reparameterize(self, value: Tensor) -> Tensor:
        """``icdf(stop(cdf(value)))``: the given samples, carrying the inversion gradient."""
        with torch.no_grad():
            u = self.base_dist.cdf(value.detach())
        return self.base_dist.icdf(u)

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        return self.base_dist.icdf(open_uniform(shape, self._like()))

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        return self.base_dist.log_prob(value)

    def cdf(self, value: Tensor) -> Tensor:
        return self.base_dist.cdf(value)

    def icdf(self, value: Tensor) -> Tensor:
        return self.base_dist.icdf(value)

    def entropy(self) -> Tensor:
        return self.base_dist.entropy()

    @property
    def mean(self) -> Tensor:
        return self.base_dist.mean

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance

    def __repr__(self) -> str:
        return f"InverseCDF({self.base_dist!r})"
