"""Implicit reparameterization through the CDF (Figurnov, Mohamed & Mnih, NeurIPS 2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from reparam.distributions._checks import samples_trusted
from reparam.distributions._surrogate import implicit_surrogate
from reparam.distributions._wrapper import ReparameterizedWrapper

_Shape = torch.Size | tuple[int, ...]


class Implicit(ReparameterizedWrapper):
    r"""Pathwise gradients for any univariate continuous ``dist`` with a differentiable ``cdf``.

    A sample ``z ~ dist`` is drawn with gradients off; its derivative in every parameter
    ``theta`` that ``dist`` depends on is the implicit-function-theorem derivative of
    ``F(z; theta) = u``:

    .. math::
        \frac{dz}{d\theta} = -\frac{\partial F(z; \theta) / \partial \theta}{p(z; \theta)}.

    No gradient ever flows through the sampler, so any sampler (rejection, inversion, a
    library call) works. The derivative of ``F`` comes from autograd on ``dist.cdf``; the
    density from ``dist.log_prob``. All other methods delegate to ``dist``.

    Higher derivatives (Hessians of expectations) are exact through third order: the sample is
    a first-order link followed by one Newton step on ``F(z; theta) = u``, which needs ``cdf`` and
    ``log_prob`` differentiable in ``z`` as well (see
    :func:`reparam.distributions._surrogate.implicit_surrogate`); fourth and higher are not.

    Args:
        dist: a univariate continuous ``torch.distributions.Distribution`` (yours included)
            with ``sample``, ``log_prob`` and a ``cdf`` differentiable in its parameters.
            torch's ``Gamma.cdf`` (``igamma``) has no derivative in the concentration; use
            :class:`reparam.distributions.Gamma` there.

    Example:
        >>> q = rp.distributions.Implicit(torch.distributions.Gamma(alpha, 1.0))
        >>> rp.expect(lambda z: z ** 2, q, rp.Pathwise(), num_samples=64).backward()

    References:
        Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018.
    """

    def reparameterize(self, value: Tensor) -> Tensor:
        """Attach the implicit gradient ``-(dF/dtheta)/p`` to given samples ``value``."""
        return implicit_surrogate(value, self.base_dist.cdf, log_density=self.base_dist.log_prob)

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            z0 = self.base_dist.sample(torch.Size(sample_shape))
        with samples_trusted(self.base_dist):  # z0 came from dist itself: no support check
            return self.reparameterize(z0)

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.base_dist.sample(torch.Size(sample_shape))
