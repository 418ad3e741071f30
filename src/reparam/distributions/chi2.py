"""Chi-squared with the accurate gamma pathwise gradient."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Chi2 as _TorchChi2

from reparam.distributions._checks import check_positive_finite, restore_validation, validation_enabled
from reparam.distributions.gamma import gamma_rsample, log_space_hint

_Shape = torch.Size | Sequence[int]


class Chi2(_TorchChi2):
    r"""``torch.distributions.Chi2`` (``Gamma(df/2, 1/2)``) with accurate ``rsample`` gradients.

    ``dz/d(df) = (1/2) dz/dalpha`` at ``alpha = df/2`` by the chain rule through the
    concentration; see :class:`reparam.distributions.Gamma`. ``df`` must be positive and
    finite: an error naming it with validation on, NaN samples with ``validate_args=False``.
    """

    def __init__(self, df: Tensor | float, validate_args: bool | None = None) -> None:
        if validation_enabled(validate_args):
            check_positive_finite(type(self).__name__, df=df)
        super().__init__(df, validate_args=False)  # checked above, more strictly
        restore_validation(self, validate_args)
        self._log_space = log_space_hint(0.5 * df) if isinstance(df, (int, float)) else None

    def expand(self, batch_shape: _Shape, _instance: Chi2 | None = None) -> Chi2:
        new = self._get_checked_instance(Chi2, _instance)
        new._log_space = getattr(self, "_log_space", None)
        expanded: Chi2 = super().expand(batch_shape, _instance=new)  # torch's expand is unannotated
        return expanded

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        return gamma_rsample(self.concentration, self.rate, shape, getattr(self, "_log_space", None))

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)
