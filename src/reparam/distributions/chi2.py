"""Chi-squared with the accurate gamma pathwise gradient."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Chi2 as _TorchChi2

from reparam.distributions.gamma import gamma_rsample

_Shape = torch.Size | tuple[int, ...]


class Chi2(_TorchChi2):
    r"""``torch.distributions.Chi2`` (``Gamma(df/2, 1/2)``) with accurate ``rsample`` gradients.

    ``dz/d(df) = (1/2) dz/dalpha`` at ``alpha = df/2`` by the chain rule through the
    concentration; see :class:`reparam.distributions.Gamma`.
    """

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        return gamma_rsample(self.concentration, self.rate, shape)

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)
