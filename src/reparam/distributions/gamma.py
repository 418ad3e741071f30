"""Gamma with pathwise gradients accurate for concentrations from 1e-4 to 1e4."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Gamma as _TorchGamma

from reparam.distributions._gamma_grad import GammaSampleGrad
from reparam.distributions._gamma_sampler import standard_gamma

_Shape = torch.Size | tuple[int, ...]


def gamma_rsample(concentration: Tensor, rate: Tensor, shape: torch.Size) -> Tensor:
    r"""``z ~ Gamma(concentration, rate)`` shaped ``shape`` carrying accurate implicit gradients.

    ``x = z * rate ~ Gamma(alpha, 1)`` is drawn by the vectorised Marsaglia-Tsang sampler
    (:func:`reparam.distributions._gamma_sampler.standard_gamma`, through log space for
    ``alpha < 1`` so tiny concentrations do not collapse); then ``dz/dalpha = (dx/dalpha) / rate``
    with ``dx/dalpha`` from :func:`reparam.distributions._gamma_grad.standard_gamma_grad`
    (computed only in backward, see :class:`reparam.distributions._gamma_grad.GammaSampleGrad`),
    and ``dz/drate = -z/rate``.
    """
    with torch.no_grad():
        x = standard_gamma(concentration.detach(), shape)
    # dx/dalpha is evaluated lazily, in backward; dz/drate = -x/rate^2 comes from autograd.
    return GammaSampleGrad.apply(concentration, x, False) / rate


class Gamma(_TorchGamma):
    r"""``torch.distributions.Gamma`` with more accurate reparameterized gradients.

    Same density; an exact vectorised Marsaglia-Tsang sampler (about twice as fast as torch's
    element-by-element one); ``rsample`` attaches the implicit derivative

    .. math::
        \frac{dx}{d\alpha} = -\frac{\partial P(\alpha, x)/\partial \alpha}{p(x; \alpha)}

    evaluated to about 2e-9 relative error or better in float64 (Temme's uniform expansion for
    ``alpha >= 8``, a differentiated series below, differences of the incomplete gamma function in
    the far tails; :mod:`reparam.distributions._gamma_grad`), where torch's rational
    approximation (Jankowiak & Obermeyer, "Pathwise Derivatives Beyond the Reparameterization
    Trick", ICML 2018) errs by up to about 1e-3. Reference: Figurnov, Mohamed & Mnih, "Implicit
    Reparameterization Gradients", NeurIPS 2018.
    """

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        return gamma_rsample(self.concentration, self.rate, shape)

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)
