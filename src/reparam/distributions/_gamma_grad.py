r"""Accurate implicit derivative of standard gamma samples in the concentration.

For ``x ~ Gamma(alpha, 1)`` with ``y = log x`` and ``P(alpha, x)`` the regularised lower
incomplete gamma function, implicit differentiation of ``P(alpha, x) = u`` gives

.. math::
    \frac{dy}{d\alpha} = -\frac{\partial P(\alpha, x)/\partial\alpha}{x\, p(x; \alpha)},
    \qquad x\,p(x;\alpha) = \frac{x^\alpha e^{-x}}{\Gamma(\alpha)}.

(Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018). This module
sends each sample to one of three evaluations, each accurate to ~2e-9 or better (measured
against 40-digit mpmath in ``tests/distributions/test_gamma_grad.py``):

* ``alpha >= 8`` and ``|eta| <= 2.5`` (all but samples of probability below ~1e-13): Temme's
  uniform expansion differentiated in ``alpha``, :mod:`reparam.distributions._gamma_asymptotic`
  (~12-40 multiply-adds per sample for a shared concentration);
* ``alpha < 8``, and the lower tail ``eta < -2.5`` above: the differentiated series,
  :mod:`reparam.distributions._gamma_series` (~30 in-place operations per sample);
* ``eta > 2.5``, and the series' far tail: central differences of ``gammainc``,
  :mod:`reparam.distributions._gamma_differences` (~500 ns per sample, rare);

against torch's rational approximation (Jankowiak & Obermeyer, ICML 2018; 6-33 ns, errors up to
~3e-3). :class:`GammaSampleGrad` defers it to the backward pass. Everything runs in float64 and
on any device torch supports.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from reparam.distributions._gamma_asymptotic import (
    MAX_ETA,
    MIN_CONCENTRATION,
    asymptotic_log_grad,
    eta_of,
)
from reparam.distributions._gamma_differences import difference_log_grad
from reparam.distributions._gamma_series import series_log_grad
from reparam.distributions._shapes import Scalar, broadcast_shape, select
from reparam.distributions._surrogate import PathwiseSpec, pathwise_grad

SERIES_REACH_SCALE = 12.0
SERIES_REACH_SHIFT = 40.0

PER_PARAMETER_MAX = 16


def standard_gamma_log_grad(log_x: Tensor, alpha: Tensor, x: Tensor | None = None) -> Tensor:
    """``d log(x) / d alpha`` for standard gamma samples given as ``log_x`` (float64 result;
    ``x = exp(log_x)`` may be passed when at hand).

    ``alpha`` broadcasts against ``log_x``; functions of ``alpha`` alone (``lgamma``,
    ``digamma``, the series' harmonic sums) are evaluated on its own shape, not per sample. A
    few distinct concentrations on the trailing dimensions (Beta, a small Dirichlet, a small
    batch) are handled one distinct value at a time, each as a shared scalar ``alpha``.
    """
    y, a = log_x.detach().double(), alpha.detach().double()
    x = torch.exp(y) if x is None else x.detach().double()
    k = a.numel()
    if y.numel() == 0 or k == 0:
        return torch.empty(broadcast_shape(y.shape, a.shape), dtype=y.dtype, device=y.device)
    if k == 1:
        return _log_grad(y, a.reshape(()), x)
    shape = broadcast_shape(y.shape, a.shape)
    if 1 < k <= PER_PARAMETER_MAX and tuple(shape[len(shape) - a.dim() :]) == tuple(a.shape):
        y_columns, x_columns = y.expand(shape).reshape(-1, k), x.expand(shape).reshape(-1, k)
        # Columns sharing a concentration (a symmetric Dirichlet: all of them) go together.
        values, which = torch.unique(a.reshape(k), return_inverse=True)
        if len(values) == 1:
            return _log_grad(y_columns.reshape(-1), values[0], x_columns.reshape(-1)).reshape(shape)
        out = torch.empty_like(y_columns)
        for i, value in enumerate(values.unbind(0)):
            columns = (which == i).nonzero().squeeze(1)
            if len(columns) == 1:
                c = int(columns)
                out[:, c] = _log_grad(y_columns[:, c].contiguous(), value, x_columns[:, c].contiguous())
            else:
                y_picked, x_picked = y_columns[:, columns].reshape(-1), x_columns[:, columns].reshape(-1)
                out[:, columns] = _log_grad(y_picked, value, x_picked).reshape(-1, len(columns))
        return out.reshape(shape)
    return _log_grad(y.expand(shape), a, x.expand(shape))


def _full(t: Tensor, shape: torch.Size) -> Tensor:
    """``t`` broadcast to ``shape`` as a tensor of its own."""
    return t if t.shape == shape else t.expand(shape).clone()


def _series_reach(a: Scalar) -> Scalar:
    """The largest ``x`` the series takes for ``a < 8`` (beyond, its term count grows past ~250
    and the condition check would send the element to differences anyway)."""
    return a + SERIES_REACH_SCALE * a**0.5 + SERIES_REACH_SHIFT


def _log_grad(y: Tensor, a: Tensor, x: Tensor) -> Tensor:
    """:func:`standard_gamma_log_grad` for ``a`` 0-d or of broadcastable shape (``x = exp(y)``):
    each element goes to one of three evaluations (most calls need one only)."""
    if a.numel() == 1:  # one shared concentration: usually a single evaluation, found by reductions
        a_value = float(a)
        if a_value >= MIN_CONCENTRATION:
            eta = eta_of(y, a)
            low, high = torch.aminmax(eta)
            if float(low) >= -MAX_ETA and float(high) <= MAX_ETA:
                return asymptotic_log_grad(eta, a)
        elif float(x.max()) <= _series_reach(a_value):
            return series_log_grad(y, a, x)
    shape = broadcast_shape(y.shape, a.shape)
    y, x = y.expand(shape), x.expand(shape)
    big = a >= MIN_CONCENTRATION
    regime = torch.zeros(shape, dtype=torch.uint8, device=y.device)  # 0 series, 1 Temme, 2 difference
    eta = None
    if bool(big.any()):
        eta = eta_of(y, a)
        regime = torch.where(big & (eta.abs() <= MAX_ETA), 1, regime)
        regime = torch.where(big & (eta > MAX_ETA), 2, regime)
    if bool((~big).any()):
        regime = torch.where(~big & (x > _series_reach(a)), 2, regime)
    counts = torch.bincount(regime.reshape(-1), minlength=3).tolist()

    def series(mask: Tensor | None) -> Tensor:
        if mask is None:
            return series_log_grad(y, a, x)
        return series_log_grad(y[mask], select(a, mask), x[mask])

    def temme(mask: Tensor | None) -> Tensor:
        assert eta is not None
        if mask is None:
            return asymptotic_log_grad(eta, a)
        return asymptotic_log_grad(eta[mask], select(a, mask))

    def difference(mask: Tensor | None) -> Tensor:
        if mask is None:
            return difference_log_grad(y, a, torch.lgamma(a))
        return difference_log_grad(y[mask], select(a, mask), select(torch.lgamma(a), mask))

    evaluations = (series, temme, difference)
    for i, count in enumerate(counts):
        if count == regime.numel():
            return _full(evaluations[i](None), shape)
    out = torch.empty(shape, dtype=y.dtype, device=y.device)
    for i, count in enumerate(counts):
        if count:
            mask = regime == i
            out[mask] = evaluations[i](mask)
    return out


def standard_gamma_grad(x: Tensor, alpha: Tensor) -> Tensor:
    """``dx/dalpha`` for standard gamma samples ``x > 0`` (float64 result)."""
    x64 = x.detach().double()
    return standard_gamma_log_grad(torch.log(x64), alpha, x64).mul_(x64)


class _GammaSpec(PathwiseSpec):
    r"""``g = dx/dalpha`` (or ``dy/dalpha`` for ``y = log x``) and its partials, for second derivatives.

    With ``log p(x) = (alpha - 1) log x - x - lgamma(alpha)`` and ``dg/dx = -d_alpha log p -
    g d_x log p`` (differentiate ``g = -P_alpha/p`` in ``x``, using ``P_x = p``):

    .. math::
        \frac{\partial g}{\partial x} = \psi(\alpha) - \log x - g\Big(\frac{\alpha - 1}{x} - 1\Big),
        \qquad
        \frac{\partial g_y}{\partial y} = \psi(\alpha) - y - g_y (\alpha - x).

    ``P_{alpha alpha}`` has no convenient closed form, so ``dg/dalpha`` is a Richardson-extrapolated
    central difference of the accurate ``g`` (step ``h = 0.01 min(alpha, sqrt(alpha))``, the scale
    on which ``g`` varies; truncation ~``1e-8``, rounding ~``2e-9/0.01``: ~``1e-7`` relative).
    """

    name = "Gamma (and Chi2, InverseGamma, StudentT, Beta, Dirichlet built on it)"

    def __init__(self, log_space: bool) -> None:
        self.log_space = log_space

    def first(self, z: Tensor, theta: Tensor) -> Tensor:
        return standard_gamma_log_grad(z, theta) if self.log_space else standard_gamma_grad(z, theta)

    def partials(self, z: Tensor, theta: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        a, z64 = theta.double(), z.double()
        psi = torch.digamma(a)
        if self.log_space:
            d_z = psi - z64 - g * (a - torch.exp(z64))
        else:
            d_z = psi - torch.log(z64) - g * ((a - 1.0) / z64 - 1.0)
        h = 0.01 * torch.minimum(a, a.sqrt())
        near = self.first(z, a + h) - self.first(z, a - h)
        far = self.first(z, a + 2.0 * h) - self.first(z, a - 2.0 * h)
        d_a = (8.0 * near - far) / (12.0 * h)
        return d_z, d_a


class GammaSampleGrad(torch.autograd.Function):
    r"""Identity on a detached standard gamma sample whose backward applies ``dx/dalpha``.

    ``GammaSampleGrad.apply(alpha, sample, log_space)`` returns ``sample`` unchanged; the implicit
    derivative (``d log x/d alpha`` when ``log_space``, else ``dx/d alpha``) is evaluated only
    when a backward pass reaches it, so sampling without gradients pays nothing for it.
    ``alpha`` must broadcast against ``sample``; its gradient is summed back to its own shape
    in float64. Second derivatives are exact (``create_graph=True``: the derivative becomes a
    function of the sample itself, :class:`_GammaSpec`); third derivatives raise an error.
    """

    @staticmethod
    def forward(alpha: Tensor, sample: Tensor, log_space: bool) -> Tensor:
        return sample.view_as(sample)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, bool], output: Tensor) -> None:
        alpha, _, log_space = inputs
        ctx.spec = _GammaSpec(log_space)
        ctx.save_for_backward(alpha, output)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        alpha, sample = ctx.saved_tensors
        return pathwise_grad(grad, sample, alpha, ctx.spec), None, None
