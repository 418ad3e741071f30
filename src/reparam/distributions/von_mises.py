"""Von Mises distribution with implicit-reparameterization ``rsample`` and a CDF."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import VonMises as _TorchVonMises
from torch.special import i0e, ndtr

from reparam.distributions._surrogate import attach_gradients

_Shape = torch.Size | tuple[int, ...]

SERIES_MAX_CONCENTRATION = 50.0


def _wrap(x: Tensor) -> Tensor:
    """Angle in ``[-pi, pi)``."""
    return torch.remainder(x + math.pi, 2.0 * math.pi) - math.pi


def _cdf_series(x: Tensor, kappa: Tensor) -> Tensor:
    r"""Hill's series ``F(x) = 1/2 + x/(2 pi) + (1/pi) sum_n (I_n/I_0)(kappa) sin(n x)/n``.

    The Bessel ratios ``r_n = I_n/I_{n-1} = 1/(2n/kappa + r_{n+1})`` come from a backward
    recurrence started at ``r_{N+1} = 0``, and the sum is nested Horner-style
    (``r_1(sin x + r_2(sin 2x/2 + ...))``). With ``N`` terms the truncation
    error is far below float64 rounding once ``N > 30 + 0.6 kappa`` (the ratios' product falls
    like ``(kappa/2)^n/n!``); compare ``28 + kappa/2`` terms in Hill's algorithm.
    """
    ratio = torch.zeros_like(x)
    acc = torch.zeros_like(x)
    terms = 30 + math.ceil(0.6 * float(kappa.detach().max())) if kappa.numel() else 0
    for n in range(terms, 0, -1):
        ratio = 1.0 / (2.0 * n / kappa + ratio)
        acc = ratio * (torch.sin(n * x) / n + acc)
    return 0.5 + x / (2.0 * math.pi) + acc / math.pi


def _cdf_normal(x: Tensor, kappa: Tensor) -> Tensor:
    r"""Hill's corrected normal approximation for large ``kappa``.

    ``s = sqrt(2/pi) sin(x/2) / i0e(kappa)`` (which tends to ``sqrt(kappa) x``), corrected by
    ``s - s^3 / ((c - 2 s^2 - 16)/3 - (s^4 + 7 s^2/4 + 167/2)/(c - 56 - s^2 + 3))^2`` with
    ``c = 24 kappa``, then ``Phi``. (Hill, "Algorithm 518: Incomplete Bessel function I0. The
    von Mises distribution", ACM TOMS 3(3), 1977, as arranged in TensorFlow Probability.)
    """
    s = math.sqrt(2.0 / math.pi) * torch.sin(0.5 * x) / i0e(kappa)
    s2 = s * s
    c = 24.0 * kappa
    denom = (c - 2.0 * s2 - 16.0) / 3.0 - (s2 * s2 + 1.75 * s2 + 83.5) / (c - 56.0 - s2 + 3.0)
    return ndtr(s - s * s2 / (denom * denom))


def von_mises_cdf(x: Tensor, concentration: Tensor) -> Tensor:
    """CDF of the von Mises with mean 0 at ``x`` in ``[-pi, pi]`` (differentiable in both)."""
    x, kappa = torch.broadcast_tensors(x, concentration)
    shape = x.shape
    x, kappa = x.reshape(-1), kappa.reshape(-1)
    small = kappa < SERIES_MAX_CONCENTRATION
    out = torch.zeros(x.shape, dtype=torch.result_type(x, kappa), device=x.device)
    if bool(small.any()):
        out = out.index_put((small,), _cdf_series(x[small], kappa[small]))
    if not bool(small.all()):
        large = ~small
        out = out.index_put((large,), _cdf_normal(x[large], kappa[large]))
    return out.clamp(0.0, 1.0).reshape(shape)


def von_mises_sample_grad(x: Tensor, concentration: Tensor) -> Tensor:
    r"""``dx/dkappa = -(dF(x; kappa)/dkappa) / p(x; kappa)`` for mean-0 samples ``x``, float64.

    ``p(x) = exp(kappa (cos x - 1)) / (2 pi i0e(kappa))``; ``dF/dkappa`` by autograd through the
    series or the normal approximation, each used where it is accurate.
    """
    x64 = x.detach().double()
    with torch.enable_grad():
        kappa = concentration.detach().double().expand_as(x64).clone().requires_grad_(True)
        cdf = von_mises_cdf(x64, kappa)
        (dcdf,) = torch.autograd.grad(cdf.sum(), kappa)
    kappa = kappa.detach()
    log_density = kappa * (torch.cos(x64) - 1.0) - torch.log(2.0 * math.pi * i0e(kappa))
    return -dcdf * torch.exp(-log_density)


class VonMises(_TorchVonMises):
    r"""``torch.distributions.VonMises`` plus ``rsample`` (implicit gradients) and ``cdf``.

    Samples come from torch's rejection sampler (Best & Fisher 1979) with gradients off; with
    ``x = wrap(z - loc)`` in ``[-pi, pi)``,

    .. math::
        \frac{\partial z}{\partial loc} = 1, \qquad
        \frac{\partial z}{\partial \kappa} = -\frac{\partial F(x; \kappa)/\partial\kappa}{p(x; \kappa)},

    with ``F`` the CDF of the mean-zero von Mises on ``[-pi, pi]`` (the cut is at the antipode of
    ``loc``), from Hill's series for ``kappa < 50`` and his corrected normal approximation
    above, as in Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients" (NeurIPS
    2018), accurate for concentrations from 1e-3 to 1e4 (float64 inside).
    """

    has_rsample = True

    def log_prob(self, value: Tensor) -> Tensor:
        """``kappa (cos(z - loc) - 1) - log(2 pi i0e(kappa))``: exact where torch's Bessel
        polynomial is good to about 1e-7."""
        if self._validate_args:
            self._validate_sample(value)
        kappa = self.concentration
        return kappa * (torch.cos(value - self.loc) - 1.0) - torch.log(2.0 * math.pi * i0e(kappa))

    def cdf(self, value: Tensor) -> Tensor:
        """``P(-pi <= Z <= value)`` on ``[-pi, pi)``, the interval torch's samples lie in."""
        if self._validate_args:
            self._validate_sample(value)
        loc, kappa = self.loc.double(), self.concentration.double()
        upto = von_mises_cdf(_wrap(value.double() - loc), kappa)
        start = von_mises_cdf(_wrap(-math.pi - loc), kappa)
        return torch.remainder(upto - start, 1.0).to(torch.result_type(value, self.loc))

    def rsample(self, sample_shape: _Shape = ()) -> Tensor:
        with torch.no_grad():
            z0 = self.sample(torch.Size(sample_shape))
            x = _wrap(z0.double() - self.loc.double())
            d_kappa = von_mises_sample_grad(x, self.concentration)
        return attach_gradients(
            z0, [(self.loc, torch.ones_like(z0)), (self.concentration, torch.nan_to_num(d_kappa))]
        )
