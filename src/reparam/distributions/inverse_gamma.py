"""Inverse gamma with the accurate gamma pathwise gradient."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import InverseGamma as _TorchInverseGamma
from torch.distributions import TransformedDistribution
from torch.distributions.transforms import PowerTransform

from reparam.distributions._checks import check_positive_finite, restore_validation, validation_enabled
from reparam.distributions.gamma import Gamma


class InverseGamma(_TorchInverseGamma):
    r"""``1/X`` with ``X ~ Gamma(concentration, rate)`` (ours): ``dz/dtheta = -z^2 dX/dtheta``.

    Density ``p(z) = rate^alpha z^{-alpha-1} e^{-rate/z} / Gamma(alpha)``; the gradient comes
    from :class:`reparam.distributions.Gamma` through the transform. ``concentration`` and
    ``rate`` must be positive and finite (NaN samples where not, with ``validate_args=False``).
    """

    def __init__(
        self, concentration: Tensor | float, rate: Tensor | float, validate_args: bool | None = None
    ) -> None:
        if validation_enabled(validate_args):
            check_positive_finite(type(self).__name__, concentration=concentration, rate=rate)
        # checked once, above: neither the base Gamma nor torch's constraints check again;
        # validation of later samples as validate_args asks
        base = Gamma(concentration, rate, validate_args=False)
        restore_validation(base, validate_args)
        neg_one = -base.rate.new_ones(())
        TransformedDistribution.__init__(self, base, PowerTransform(neg_one), validate_args=False)
        restore_validation(self, validate_args)

    def expand(
        self, batch_shape: torch.Size | Sequence[int], _instance: InverseGamma | None = None
    ) -> InverseGamma:
        new = self._get_checked_instance(InverseGamma, _instance)
        # torch's expand is unannotated
        expanded: InverseGamma = TransformedDistribution.expand(self, batch_shape, _instance=new)
        return expanded

    def cdf(self, value: Tensor) -> Tensor:
        """``P(Z <= z) = Q(alpha, rate/z)`` (regularised upper incomplete gamma)."""
        if self._validate_args:
            self._validate_sample(value)
        q: Tensor = torch.special.gammaincc(self.concentration, self.rate / value)  # typed Any by torch
        return q
