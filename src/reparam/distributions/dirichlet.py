"""Dirichlet with the exact implicit pathwise derivative; log-space gamma draws."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Dirichlet as _TorchDirichlet

from reparam.distributions._beta_grad import _draw_log_gamma, dirichlet_rsample, keep_inside_unit_interval
from reparam.distributions._checks import check_positive_finite, validation_enabled
from reparam.distributions._gamma_grad import apply_sample_grad

__all__ = ["Dirichlet", "dirichlet_rsample", "keep_inside_unit_interval", "log_gamma_rsample"]

_Shape = torch.Size | Sequence[int]


def log_gamma_rsample(concentration: Tensor, shape: _Shape) -> Tensor:
    """``log G``, ``G ~ Gamma(concentration, 1)`` shaped ``shape``, with ``d log G/d alpha``.

    In float64 (see :func:`reparam.distributions._beta_grad._draw_log_gamma`: ``log G`` reaches
    ``log(U)/alpha``, e.g. -1e4 at 1e-4, where float32 would keep only three digits of ``G``).
    """
    log_g = _draw_log_gamma(concentration, torch.Size(shape))
    # d log G / d alpha is evaluated lazily, only if a backward pass reaches it.
    return apply_sample_grad(concentration, log_g, True)


class Dirichlet(_TorchDirichlet):
    r"""``X = G / sum(G)``, ``G_i ~ Gamma(alpha_i, 1)`` drawn in log space; differentiated
    implicitly through the marginal Beta CDFs.

    ``x_i ~ Beta(alpha_i, alpha_0 - alpha_i)``; ``dx_i/dalpha_i`` is that marginal's implicit
    derivative and ``dx_j/dalpha_i = -x_j/(1 - x_i) dx_i/dalpha_i`` (torch's convention: the
    other coordinates keep their ratios), evaluated exactly by
    :mod:`reparam.distributions._beta_grad` for concentrations 1e-4..1e4. Reference: Figurnov,
    Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018. First derivatives
    only: a double backward raises.

    ``concentration`` must be positive and finite: with validation on (torch's default) anything
    else raises a ``ValueError`` naming the argument; with ``validate_args=False`` those entries
    give NaN samples.

    Example::

        >>> alpha = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
        >>> x = Dirichlet(alpha).rsample((1000,))
        >>> x[..., 0].mean().backward()  # alpha.grad estimates d E[X_0]/d alpha
    """

    def __init__(self, concentration: Tensor, validate_args: bool | None = None) -> None:
        validate = validation_enabled(validate_args)
        if validate:
            check_positive_finite(type(self).__name__, concentration=concentration)
        # torch's own parameter check (a mask and a read, a subset of the one above) is skipped;
        # samples passed to log_prob are still validated when validation is on
        super().__init__(concentration, validate_args=False)
        self._validate_args = validate

    def expand(self, batch_shape: _Shape, _instance: Dirichlet | None = None) -> Dirichlet:
        new = self._get_checked_instance(Dirichlet, _instance)
        expanded: Dirichlet = super().expand(batch_shape, _instance=new)  # torch's expand is unannotated
        return expanded

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        return dirichlet_rsample(self.concentration, shape)

    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)
