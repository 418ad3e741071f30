"""Implicit reparameterization through the CDF (Figurnov, Mohamed & Mnih, NeurIPS 2018)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from reparam.distributions._checks import samples_trusted
from reparam.distributions._surrogate import distribution_family, implicit_surrogate
from reparam.distributions._wrapper import ReparameterizedWrapper

_Shape = torch.Size | Sequence[int]


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

    Higher derivatives (Hessians of expectations and beyond) are exact at every order to which
    ``cdf`` and ``log_prob`` are differentiable in ``z`` and the parameters: the backward under
    ``create_graph`` is ``g(z, theta) = -F_theta/p`` evaluated at the sample itself, which carries
    its own derivative (see :func:`reparam.distributions._surrogate.implicit_surrogate`). The
    parameters are the tensors ``dist`` holds (and its ``base_dist``/``transforms``); a ``cdf``
    reading other tensors is differentiated back to its graph's leaves instead (slower).

    Args:
        dist: a univariate continuous ``torch.distributions.Distribution`` (yours included)
            with ``sample``, ``log_prob`` and a ``cdf`` differentiable in its parameters.
            torch's ``Gamma.cdf`` (``igamma``) has no derivative in the concentration; use
            :class:`reparam.distributions.Gamma` there.

    Example:
        >>> loc = torch.tensor(0.5, requires_grad=True)
        >>> q = rp.distributions.Implicit(torch.distributions.Laplace(loc, 1.0))
        >>> rp.expect(lambda z: z ** 2, q, rp.Pathwise(), num_samples=64).backward()
        >>> loc.grad is not None  # ~ d/dloc (loc^2 + 2) = 1
        True

    References:
        Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018.
    """

    def reparameterize(self, value: Tensor) -> Tensor:
        """Attach the implicit gradient ``-(dF/dtheta)/p`` to given samples ``value``."""
        dist = self.base_dist
        family, params = distribution_family(dist)
        return implicit_surrogate(value, dist.cdf, log_density=dist.log_prob, family=family, params=params)

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            z0 = self.base_dist.sample(torch.Size(sample_shape))
        with samples_trusted(self.base_dist):  # z0 came from dist itself: no support check
            return self.reparameterize(z0)

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.base_dist.sample(torch.Size(sample_shape))
