"""The part ``Implicit`` and ``InverseCDF`` share: a univariate distribution that wraps
``base_dist``, adds its own ``rsample`` and delegates everything else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from reparam.distributions._checks import check_univariate_continuous


class ReparameterizedWrapper(Distribution):
    """Wraps ``dist`` (checked univariate and continuous, with the method ``needs``);
    subclasses define ``rsample`` and ``reparameterize``. Density, CDF, inverse CDF, entropy
    and moments are ``dist``'s."""

    has_rsample = True
    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {}
    needs: ClassVar[str] = "cdf"

    def __init__(self, dist: Distribution, validate_args: bool | None = None) -> None:
        self.base_dist = check_univariate_continuous(dist, type(self).__name__, self.needs)
        super().__init__(dist.batch_shape, dist.event_shape, validate_args=False)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint | None:
        return self.base_dist.support

    def expand(
        self, batch_shape: torch.Size | Sequence[int], _instance: ReparameterizedWrapper | None = None
    ) -> ReparameterizedWrapper:
        return type(self)(self.base_dist.expand(torch.Size(batch_shape)))

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
    def mode(self) -> Tensor:
        return self.base_dist.mode

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_dist!r})"
