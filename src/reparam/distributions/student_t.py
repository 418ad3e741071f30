"""Student's t with pathwise gradients in the degrees of freedom through an accurate gamma draw."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import StudentT as _TorchStudentT

from reparam.distributions.dirichlet import log_gamma_rsample

_Shape = torch.Size | tuple[int, ...]


class StudentT(_TorchStudentT):
    r"""``z = loc + scale * N * sqrt(df / (2 G))``, ``N ~ N(0, 1)``, ``G ~ Gamma(df/2, 1)``.

    ``2G ~ Chi2(df)``; ``log G`` is drawn and differentiated in log space (see
    :class:`reparam.distributions.Gamma`) so small ``df`` gives heavy tails, not ``inf * 0``.
    """

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        normal = torch.randn(shape, dtype=self.df.dtype, device=self.df.device)
        log_g = log_gamma_rsample(0.5 * self.df, shape)
        factor = torch.exp(0.5 * (torch.log(self.df.double()) - math.log(2.0) - log_g)).to(self.df.dtype)
        return self.loc + self.scale * normal * factor

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)
