"""Gamma with pathwise gradients accurate for concentrations from 1e-4 to 1e4."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Gamma as _TorchGamma

from reparam.distributions._checks import check_positive_finite, validation_enabled
from reparam.distributions._gamma_grad import GammaSampleGrad
from reparam.distributions._gamma_sampler import log_standard_gamma, needs_log_space, standard_gamma
from reparam.distributions._sync import sync_free

_Shape = torch.Size | Sequence[int]


def log_space_hint(concentration: Tensor | float) -> bool | None:
    """Whether draws must go through log space (some concentration below 1), when that is known
    without reading a tensor: for a Python number; ``None`` for a tensor."""
    return float(concentration) < 1.0 if isinstance(concentration, (int, float)) else None


def gamma_rsample(
    concentration: Tensor, rate: Tensor, shape: torch.Size, log_space: bool | None = None
) -> Tensor:
    r"""``z ~ Gamma(concentration, rate)`` shaped ``shape`` carrying accurate implicit gradients.

    ``x = z * rate ~ Gamma(alpha, 1)`` is drawn by the vectorised Marsaglia-Tsang sampler
    (:func:`reparam.distributions._gamma_sampler.standard_gamma`); then ``dz/dalpha =
    (dx/dalpha) / rate`` with ``dx/dalpha`` from
    :func:`reparam.distributions._gamma_grad.standard_gamma_grad` (computed only in backward, see
    :class:`reparam.distributions._gamma_grad.GammaSampleGrad`), and ``dz/drate = -z/rate``.
    Where some ``alpha < 1``, ``z = exp(log x - log rate)`` from the log-space draw, so a tiny
    concentration with a large rate keeps every ``z`` that is representable (dividing an
    underflowed ``x`` by the rate gave exact zeros). ``log_space`` says so when known without
    reading a tensor (Python numbers: :func:`log_space_hint`); otherwise it is read from the
    values on the CPU (free there) and assumed where
    :func:`reparam.distributions._sync.sync_free` holds (a read would stall an accelerator).
    ``z`` is clamped at the dtype's smallest
    normal number (as torch does), so it never leaves the support; NaN where ``concentration``
    or ``rate`` is not positive and finite.
    """
    with torch.no_grad():
        alpha = concentration.detach()
        if log_space is None:
            log_space = True if sync_free(alpha) else needs_log_space(alpha)
        x = log_standard_gamma(alpha, shape) if log_space else standard_gamma(alpha, shape, False)
    # Rate-shaped work only: NaN where the rate is invalid (gradient kept where it is valid).
    rate = torch.where((rate > 0) & (rate < math.inf), rate, torch.full_like(rate, math.nan))
    tiny = torch.finfo(x.dtype).tiny
    # dx/dalpha is evaluated lazily, in backward; dz/drate = -z/rate comes from autograd.
    if log_space:
        return torch.exp(GammaSampleGrad.apply(concentration, x, True) - torch.log(rate)).clamp(min=tiny)
    z: Tensor = GammaSampleGrad.apply(concentration, x, False) / rate  # apply: Any
    return z.clamp(min=tiny)


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

    ``concentration`` and ``rate`` must be positive and finite: with validation on (torch's
    default) anything else raises a ``ValueError`` naming the argument; with
    ``validate_args=False`` those entries give NaN samples.
    """

    def __init__(
        self, concentration: Tensor | float, rate: Tensor | float, validate_args: bool | None = None
    ) -> None:
        if validation_enabled(validate_args):
            check_positive_finite(type(self).__name__, concentration=concentration, rate=rate)
        super().__init__(concentration, rate, validate_args=validate_args)
        self._log_space = log_space_hint(concentration)

    def expand(self, batch_shape: _Shape, _instance: Gamma | None = None) -> Gamma:
        new = self._get_checked_instance(Gamma, _instance)
        new._log_space = getattr(self, "_log_space", None)
        expanded: Gamma = super().expand(batch_shape, _instance=new)  # torch's expand is unannotated
        return expanded

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        return gamma_rsample(self.concentration, self.rate, shape, getattr(self, "_log_space", None))

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)
