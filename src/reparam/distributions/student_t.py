"""Student's t with pathwise gradients in the degrees of freedom through an accurate gamma draw."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Chi2 as _TorchChi2
from torch.distributions import Distribution
from torch.distributions import StudentT as _TorchStudentT
from torch.distributions.utils import broadcast_all

from reparam.distributions._checks import check_finite, check_positive_finite, validation_enabled
from reparam.distributions._gamma_grad import apply_sample_grad
from reparam.distributions._gamma_sampler import log_standard_gamma

_Shape = torch.Size | Sequence[int]


class StudentT(_TorchStudentT):
    r"""``z = loc + scale * N * sqrt(df / (2 G))``, ``N ~ N(0, 1)``, ``G ~ Gamma(df/2, 1)``.

    ``2G ~ Chi2(df)``; ``log G`` is drawn and differentiated in log space (see
    :class:`reparam.distributions.Gamma`) so small ``df`` gives heavy tails, not ``inf * 0``.
    ``df`` and ``scale`` must be positive and finite and ``loc`` finite: an error naming the
    argument with validation on; NaN samples where one is not, with ``validate_args=False``.
    """

    def __init__(
        self,
        df: Tensor | float,
        loc: Tensor | float = 0.0,
        scale: Tensor | float = 1.0,
        validate_args: bool | None = None,
    ) -> None:
        if validation_enabled(validate_args):
            check_positive_finite(type(self).__name__, df=df, scale=scale)
            check_finite(type(self).__name__, loc=loc)
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        # torch builds this Chi2 with default validation, which raised even with validate_args=False.
        self._chi2 = _TorchChi2(self.df, validate_args=False)
        Distribution.__init__(self, self.df.size(), validate_args=validate_args)

    def expand(self, batch_shape: _Shape, _instance: StudentT | None = None) -> StudentT:
        new = self._get_checked_instance(StudentT, _instance)
        expanded: StudentT = super().expand(batch_shape, _instance=new)  # torch's expand is unannotated
        return expanded

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        normal = torch.randn(shape, dtype=self.df.dtype, device=self.df.device)
        half_df = 0.5 * self.df
        with torch.no_grad():  # log G in float64 (as Beta/Dirichlet draw it: tails of small df)
            log_g = log_standard_gamma(half_df, shape, torch.float64)
        log_g = apply_sample_grad(half_df, log_g, True)  # d log G/d(df/2), lazily in backward
        factor = torch.exp(0.5 * (torch.log(self.df.double()) - math.log(2.0) - log_g)).to(self.df.dtype)
        # Parameter-shaped: NaN where loc is not finite or scale not positive and finite.
        nan = torch.full_like(self.scale, math.nan)
        loc = torch.where(torch.isfinite(self.loc), self.loc, nan)
        scale = torch.where((self.scale > 0) & (self.scale < math.inf), self.scale, nan)
        return loc + scale * normal * factor

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)
