"""Von Mises distribution with implicit-reparameterization ``rsample`` and a CDF."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.distributions import VonMises as _TorchVonMises
from torch.special import i0e

from reparam.distributions._apply import apply
from reparam.distributions._checks import check_finite, check_positive_finite, validation_enabled
from reparam.distributions._surrogate import (
    PathwiseSample,
    PathwiseSpec,
    check_no_forward_mode,
    refuse_further,
)
from reparam.distributions._von_mises_regimes import cdf_and_grad, cdf_second, sample_grad
from reparam.distributions._von_mises_sampler import von_mises_centered
from reparam.distributions._von_mises_series import _log_density, _score_kappa

__all__ = ["VonMises", "_log_density", "von_mises_cdf", "von_mises_sample_grad"]

_Shape = torch.Size | Sequence[int]


def _wrap(x: Tensor) -> Tensor:
    """Angle in ``[-pi, pi)``."""
    return torch.remainder(x + math.pi, 2.0 * math.pi) - math.pi


class _CDFKappa(torch.autograd.Function):
    """``dF/dkappa`` (given, ``d_cdf``) as a function of ``(x, kappa)``, differentiable once:
    ``d/dx = dp/dkappa = p (cos x - I1/I0)``, ``d/dkappa = d^2F/dkappa^2``
    (:func:`~reparam.distributions._von_mises_regimes.cdf_second`)."""

    @staticmethod
    def forward(x: Tensor, kappa: Tensor, d_cdf: Tensor) -> Tensor:
        return d_cdf.view_as(d_cdf)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, Tensor], output: Tensor) -> None:
        x, kappa, _ = inputs
        ctx.save_for_backward(x, kappa)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        x, kappa = ctx.saved_tensors
        with torch.no_grad():
            d_x = grad * torch.exp(_log_density(x, kappa)) * _score_kappa(x, kappa)
            second = cdf_second(x.reshape(-1), kappa.reshape(-1) if kappa.dim() else kappa)
            d_kappa = (grad * second.reshape(x.shape)).sum_to_size(kappa.shape)
        name = "VonMises.cdf"
        return refuse_further(d_x, name, x, kappa, grad), refuse_further(d_kappa, name, x, kappa, grad), None


class _VonMisesCDF(torch.autograd.Function):
    """``F(x; kappa)`` with ``dF/dx = p(x; kappa)`` and ``dF/dkappa`` from the same recurrences;
    second derivatives exact (through :class:`_CDFKappa`), third ones raise."""

    @staticmethod
    def forward(x: Tensor, kappa: Tensor) -> tuple[Tensor, Tensor]:
        cdf, d_cdf = cdf_and_grad(x.reshape(-1), kappa.reshape(-1) if kappa.dim() else kappa)
        return cdf.reshape(x.shape), d_cdf.reshape(x.shape)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: tuple[Tensor, Tensor]) -> None:
        x, kappa = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(x, kappa, output[1])

    @staticmethod
    def backward(ctx: Any, grad: Tensor, _: Tensor) -> tuple[Tensor, Tensor]:
        x, kappa, d_cdf = ctx.saved_tensors
        if torch.is_grad_enabled():
            d_cdf = _CDFKappa.apply(x, kappa, d_cdf)
        return grad * torch.exp(_log_density(x, kappa)), (grad * d_cdf).sum_to_size(kappa.shape)


def _flat_args(x: Tensor, concentration: Tensor) -> tuple[Tensor, Tensor]:
    """float64 ``x`` and ``kappa``, broadcast to one shape unless ``kappa`` is a single value."""
    x, kappa = x.double(), concentration.double()
    if kappa.numel() == 1:
        return x.contiguous(), kappa.reshape(())
    x, kappa = torch.broadcast_tensors(x, kappa)
    return x.contiguous(), kappa.contiguous()


def von_mises_cdf(x: Tensor, concentration: Tensor) -> Tensor:
    """CDF of the von Mises with mean 0 at ``x`` in ``[-pi, pi]``, float64, differentiable in both."""
    cdf: Tensor = apply(_VonMisesCDF, *_flat_args(x, concentration))[0]
    return cdf


def von_mises_sample_grad(x: Tensor, concentration: Tensor) -> Tensor:
    r"""``dx/dkappa = -(dF(x; kappa)/dkappa) / p(x; kappa)`` for mean-0 samples ``x``, float64.

    ``p(x) = exp(kappa (cos x - 1)) / (2 pi i0e(kappa))``; ``dF/dkappa`` from the differentiated
    series (float64), or in closed form from the normal approximation (per-sample arithmetic in
    ``concentration``'s dtype when that is float32: see :class:`VonMises`), each where it is
    accurate.
    """
    low = torch.float32 if concentration.dtype == torch.float32 else torch.float64
    x, kappa = _flat_args(x.detach(), concentration.detach())
    g = sample_grad(x.reshape(-1), kappa.reshape(-1) if kappa.dim() else kappa, low)
    return g.reshape(x.shape)


class _VonMisesSpec(PathwiseSpec):
    r"""``g = dx/dkappa`` at the mean-zero sample ``x`` (the sample is ``z = wrap(x + loc)``) and
    its partials (for second derivatives).

    With ``d_x log p = -kappa sin x`` and ``d_kappa log p = cos x - I1/I0``:
    ``dg/dx = I1/I0 - cos x + g kappa sin x``,
    ``dg/dkappa = -F_{kappa kappa}/p - g (cos x - I1/I0)``
    (:func:`~reparam.distributions._von_mises_regimes.cdf_second`).
    """

    name = "VonMises"

    def first(self, z: Tensor, theta: Tensor) -> Tensor:
        return torch.nan_to_num(von_mises_sample_grad(z, theta))

    def partials(self, z: Tensor, theta: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        x, kappa = _flat_args(z, theta)
        score = _score_kappa(x, kappa)
        d_z = g * kappa * torch.sin(x) - score
        second = cdf_second(x.reshape(-1), kappa.reshape(-1) if kappa.dim() else kappa).reshape(x.shape)
        d_kappa = -second * torch.exp(-_log_density(x, kappa)) - g * score
        return torch.nan_to_num(d_z), torch.nan_to_num(d_kappa)


class VonMises(_TorchVonMises):
    r"""``torch.distributions.VonMises`` plus ``rsample`` (implicit gradients) and ``cdf``.

    Samples come from Best & Fisher's rejection sampler (1979; fixed shapes, :meth:`sample`); with
    ``x = wrap(z - loc)`` in ``[-pi, pi)``,

    .. math::
        \frac{\partial z}{\partial loc} = 1, \qquad
        \frac{\partial z}{\partial \kappa} = -\frac{\partial F(x; \kappa)/\partial\kappa}{p(x; \kappa)},

    with ``F`` the CDF of the mean-zero von Mises on ``[-pi, pi]`` (the cut is at the antipode of
    ``loc``), from Hill's series for ``kappa < 50`` and his corrected normal approximation
    above, as in Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients" (NeurIPS
    2018), accurate for concentrations from 1e-3 to 1e4. Second derivatives
    (``create_graph=True`` twice) are exact, with ``d^2F/dkappa^2`` by Richardson differences of
    ``dF/dkappa`` (series or normal approximation); third derivatives raise an error.

    Host synchronisation: none on the sync-free path
    (:func:`reparam.distributions._sync.sync_free`: accelerators, ``torch.compile``/``jit.trace``,
    ``torch.func``, :func:`reparam.distributions.force_sync_free`), in ``sample``/``rsample``,
    their backward (first and second order), ``log_prob`` and ``cdf``: the sampler has fixed
    shapes (:mod:`reparam.distributions._von_mises_sampler`) and both regimes run on every
    element, picked by ``torch.where`` (:mod:`reparam.distributions._von_mises_regimes`). CPU
    tensors read the concentration to run one regime with the terms it needs.

    Precision (issue #14, float64 only where accuracy needs it; measured on the quantiles from
    1e-8 to 1 - 1e-8, float32 arithmetic against float64 at the same points,
    ``tests/distributions/test_von_mises.py``):

    * normal approximation (``kappa >= 50``): float32 per-sample arithmetic for float32
      concentrations, with the quantities of ``kappa`` alone (``1 - I1/I0``, which cancels in
      float32: 1e-3 at ``kappa = 1e4``, and ``i0e``) in float64: within 4e-6 of float64;
    * Hill's series (``kappa < 50``): float64. In float32 its Clenshaw sum loses ``~N eps`` of
      the terms' size to cancellation, which the tails' small ``dF/dkappa`` cannot absorb: 1.7e-4
      relative at ``kappa = 20`` on 2e4 draws, 1e-2 in 1e-8 tails from ``kappa = 10``, even with
      the coefficients in float64 (fine below ``kappa`` ~ 5: 3e-5);
    * second derivatives (``create_graph``): float64 (differences of first derivatives).

    The sampler is float64 too (``acos`` of values near 1 loses small angles in float32).
    """

    has_rsample = True

    def __init__(
        self, loc: Tensor | float, concentration: Tensor | float, validate_args: bool | None = None
    ) -> None:
        if validation_enabled(validate_args):
            check_finite(type(self).__name__, loc=loc)
            check_positive_finite(type(self).__name__, concentration=concentration)
        # torch annotates loc and concentration as Tensor but broadcasts Python numbers too
        super().__init__(loc, concentration, validate_args=validate_args)  # type: ignore[arg-type]

    def expand(self, batch_shape: _Shape, _instance: VonMises | None = None) -> VonMises:
        new = self._get_checked_instance(VonMises, _instance)
        expanded: VonMises = super().expand(batch_shape, _instance=new)  # torch's expand is unannotated
        return expanded

    @torch.no_grad()
    def sample(self, sample_shape: _Shape = ()) -> Tensor:
        """Best & Fisher's rejection sampler ("Efficient simulation of the von Mises
        distribution", Applied Statistics 28, 1979) with fixed shapes and no host
        synchronisation (:mod:`reparam.distributions._von_mises_sampler`: about 2.4 proposals
        per sample; a draw rejected 28 times in a row, probability below 1.2e-13, is set to the
        mode ``loc``). NaN where ``loc`` is not finite or ``concentration`` is NaN, negative or
        infinite (torch's loop never ended there); ``concentration = 0`` gives the uniform
        distribution, its limit. float64 inside (``acos`` near 1 loses the digits of small
        angles in float32: relative 6e-4 at ``kappa = 1e4``)."""
        x, offset = self._centered(torch.Size(sample_shape))
        return _wrap(x + offset + self.loc.double()).to(self.loc.dtype)

    def _centered(self, sample_shape: torch.Size) -> tuple[Tensor, Tensor]:
        """float64 mean-zero draws ``x`` (detached) and ``offset``: 0, or NaN where the parameters
        are invalid (see :meth:`sample`); the sample is ``wrap(x + offset + loc)``."""
        shape = self._extended_shape(sample_shape)
        loc, kappa = self.loc.detach().double(), self.concentration.detach().double()
        valid = torch.isfinite(loc) & (kappa >= 0) & (kappa < math.inf)
        offset = torch.where(valid, torch.zeros_like(loc), torch.full_like(loc, math.nan))
        # kappa -> 0 is the uniform limit (acceptance 1); 1e-30 reaches it without 1/0.
        kappa = torch.where(valid, kappa.clamp(min=1e-30), torch.ones_like(kappa))
        return von_mises_centered(kappa, shape), offset

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
        """:meth:`sample`'s draws (the same values from the same generator state), with
        ``dz/dkappa`` evaluated lazily in backward (second derivatives exact) and ``dz/dloc = 1``.
        Reverse mode only: forward mode (``torch.func.jvp``, ``jacfwd``) raises, naming the fix."""
        check_no_forward_mode("VonMises.rsample")
        x0, offset = self._centered(torch.Size(sample_shape))
        x: Tensor = apply(PathwiseSample, self.concentration, x0, _VonMisesSpec())
        return _wrap(x + offset + self.loc.double()).to(self.loc.dtype)
