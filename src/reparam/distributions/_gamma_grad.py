r"""Accurate implicit derivative of standard gamma samples in the concentration.

For ``x ~ Gamma(alpha, 1)`` with ``y = log x`` and ``P(alpha, x)`` the regularised lower
incomplete gamma function, implicit differentiation of ``P(alpha, x) = u`` gives

.. math::
    \frac{dy}{d\alpha} = -\frac{\partial P(\alpha, x)/\partial\alpha}{x\, p(x; \alpha)},
    \qquad x\,p(x;\alpha) = \frac{x^\alpha e^{-x}}{\Gamma(\alpha)}.

(Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018). This module
takes each sample's value from one of three evaluations, each accurate to ~2e-9 or better (measured
against 40-digit mpmath in ``tests/distributions/test_gamma_grad.py``):

* ``alpha >= 8`` and ``|eta| <= 2.5`` (all but samples of probability below ~1e-13): Temme's
  uniform expansion differentiated in ``alpha``, :mod:`reparam.distributions._gamma_asymptotic`
  (~12-40 multiply-adds per sample for a shared concentration);
* ``alpha < 8``, and the lower tail ``eta < -2.5`` above: the differentiated series,
  :mod:`reparam.distributions._gamma_series` (~30 in-place operations per sample);
* ``eta > 2.5``, and the series' far tail: central differences of ``gammainc``,
  :mod:`reparam.distributions._gamma_differences` (~500 ns per sample, rare);

against torch's rational approximation (Jankowiak & Obermeyer, ICML 2018; 6-33 ns, errors up to
~3e-3). Two dispatches choose among them (:func:`reparam.distributions._sync.sync_free`): on the
CPU by reading values back to the host, free there, each element evaluated once
(:mod:`reparam.distributions._gamma_host`); on accelerators, under ``torch.compile``/``vmap`` and
in :func:`reparam.distributions.force_sync_free` by masks and fixed-size pools, never reading a
value (:mod:`reparam.distributions._gamma_regimes`: no host synchronisation, ~2x the work).
On the host path a call with one shared concentration takes a lean evaluation of the same
formulas with few tensor operations (~20 for a small call:
:func:`reparam.distributions._gamma_host.shared_sample_grad`).
:class:`GammaSampleGrad` defers it to the backward pass.

Precision (issue 14, point 3): the series' result is a difference whose condition number
stays below ~100 up to ``bulk_limit(alpha)`` (~97% of draws) but reaches 1e5 (up to the lean
path's limit) and 1e6 (where it hands over to differences) further out, so float32 rounding
(6e-8) would give relative errors of 6e-3 and more there, against the 1e-4 target: the tail
runs in float64. The bulk in float32 stays within 1.0e-5 of float64 (measured on 200000 draws
at each of ``alpha`` = 1e-4 ... 7.99), so the host path for one shared concentration evaluates
it in the sample's dtype in calls above 1024 samples (below, float32 would save nothing).
Differences of ``gammainc`` divide rounding by a step of 1e-5 relative: float64 only. Temme's
expansion has no cancellation (``eta`` from ``mu - log1p(mu)`` loses relative but not absolute
precision): in float32 it stays within 4.2e-7 relative of float64 (measured on 200000 draws at
each of ``a`` = 8 ... 1e4), so the host path for one shared concentration runs it in the
sample's dtype at any size. The per-element host path and the sync-free path still evaluate
every regime in float64 (not yet split by regime).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from reparam.distributions._apply import apply
from reparam.distributions._gamma_host import host_log_grad, shared_sample_grad
from reparam.distributions._gamma_regimes import regime_log_grad
from reparam.distributions._shapes import broadcast_shape
from reparam.distributions._surrogate import PathwiseSpec, check_no_forward_mode, pathwise_grad
from reparam.distributions._sync import sync_free


def standard_gamma_log_grad(
    log_x: Tensor, alpha: Tensor, x: Tensor | None = None, sampled: bool = False
) -> Tensor:
    """``d log(x) / d alpha`` for standard gamma samples given as ``log_x`` (float64 result;
    ``x = exp(log_x)`` may be passed when at hand).

    ``alpha`` broadcasts against ``log_x``. CPU tensors: each element to its one evaluation
    after a few host reads (:func:`reparam.distributions._gamma_host.host_log_grad`); where
    :func:`reparam.distributions._sync.sync_free` holds, by masks and fixed-size pools with no
    host synchronisation (:func:`reparam.distributions._gamma_regimes.regime_log_grad`), where
    ``sampled`` (the points are draws from ``Gamma(alpha)``: the backward pass) sizes the rare
    regimes' pools for their probabilities; otherwise they have room for every element.
    """
    y, a = log_x.detach().double(), alpha.detach().double()
    x = torch.exp(y) if x is None else x.detach().double()
    if not (sync_free(y) or sync_free(a)):
        return host_log_grad(y, a, x)
    shape = broadcast_shape(y.shape, a.shape)
    if shape.numel() == 0:
        return torch.empty(shape, dtype=y.dtype, device=y.device)
    return regime_log_grad(_full(y, shape), a, _full(x, shape), sampled)


def _full(t: Tensor, shape: torch.Size) -> Tensor:
    """``t`` broadcast to ``shape`` as a contiguous tensor of its own."""
    return t.contiguous() if t.shape == shape else t.expand(shape).contiguous()


def standard_gamma_grad(x: Tensor, alpha: Tensor, sampled: bool = False) -> Tensor:
    """``dx/dalpha`` for standard gamma samples ``x > 0`` (float64 result)."""
    x64 = x.detach().double()
    return standard_gamma_log_grad(torch.log(x64), alpha, x64, sampled).mul_(x64)


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
        if self.log_space:
            return standard_gamma_log_grad(z, theta, sampled=True)
        return standard_gamma_grad(z, theta, sampled=True)

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

    generate_vmap_rule = True  # torch.func.vmap: no host reads, fixed shapes (a test covers it)

    @staticmethod
    def forward(alpha: Tensor, sample: Tensor, log_space: bool, value: float | None = None) -> Tensor:
        return sample.view_as(sample)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        alpha, _, log_space, *rest = inputs
        ctx.spec = _GammaSpec(log_space)
        ctx.value = rest[0] if rest else None  # alpha's one value when the caller read it
        ctx.save_for_backward(alpha, output)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        alpha, sample = ctx.saved_tensors
        if alpha.numel() == 1 and not torch.is_grad_enabled() and not (sync_free(sample) or sync_free(alpha)):
            # one shared concentration on the host path, no graph to build: the weighted sum
            # sum(grad * dx/dalpha) in one lean pass (None where a rarer regime is needed)
            value = alpha.item() if ctx.value is None else ctx.value
            total = shared_sample_grad(grad, sample, value, ctx.spec.log_space)
            if total is not None:
                total = total.to(alpha.dtype)
                return (total if alpha.dim() == 0 else total.reshape(alpha.shape)), None, None, None
        return pathwise_grad(grad, sample, alpha, ctx.spec), None, None, None


def apply_sample_grad(alpha: Tensor, sample: Tensor, log_space: bool, value: float | None = None) -> Tensor:
    """``GammaSampleGrad.apply(alpha, sample, log_space, value)``, without the Python wrapper's
    per-call argument binding when nothing needs it (:func:`reparam.distributions._apply.apply`);
    ``value``: ``alpha``'s one value when the caller has read it (saves a read in backward).
    Forward mode is refused with a message naming the fix (the Function has no ``jvp``)."""
    check_no_forward_mode("Gamma rsample (also in Chi2, InverseGamma, StudentT)")
    out: Tensor = apply(GammaSampleGrad, alpha, sample, log_space, value)
    return out
