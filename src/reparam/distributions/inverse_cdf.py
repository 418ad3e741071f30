"""Explicit reparameterization by inversion: ``z = F^{-1}(u; theta)``, ``u ~ U(0, 1)``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from reparam.distributions._wrapper import ReparameterizedWrapper

_Shape = torch.Size | Sequence[int]


def open_uniform(shape: torch.Size, like: Tensor) -> Tensor:
    """Uniform draws in the open interval ``(0, 1)`` (``icdf`` is infinite at both ends)."""
    finfo = torch.finfo(like.dtype)
    u = torch.rand(shape, dtype=like.dtype, device=like.device)
    return u.clamp_(min=finfo.tiny, max=1.0 - finfo.eps / 2)


class InverseCDF(ReparameterizedWrapper):
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

    needs = "icdf"

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
