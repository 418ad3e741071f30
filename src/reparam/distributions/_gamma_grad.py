r"""Accurate implicit derivative of standard gamma samples in the concentration.

For ``x ~ Gamma(alpha, 1)`` with ``y = log x`` and ``P(alpha, x)`` the regularised lower
incomplete gamma function, implicit differentiation of ``P(alpha, x) = u`` gives

.. math::
    \frac{dy}{d\alpha} = -\frac{\partial P(\alpha, x)/\partial\alpha}{x\, p(x; \alpha)},
    \qquad x\,p(x;\alpha) = \frac{x^\alpha e^{-x}}{\Gamma(\alpha)}.

(Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018). Two
evaluations of ``dP/dalpha``, each where its rounding error stays far below 1e-8:

* ``x <= 1``, and ``x <= alpha + 4`` when ``alpha <= 100``: the series
  ``P = x^alpha e^{-x} / Gamma(alpha+1) * S``, ``S = sum_n x^n / ((alpha+1)...(alpha+n))``
  (Abramowitz & Stegun 6.5.29), differentiated term by term, gives
  ``dy/dalpha = -(S (y - psi(alpha+1)) + dS/dalpha) / alpha`` with
  ``dS/dalpha = -sum_n c_n sum_{k<=n} 1/(alpha+k)``; at most ~110 terms reach float64 rounding
  (cheaper than two ``gammainc`` calls up to there).
  Above the median its rounding error relative to ``dP/dalpha = -dQ/dalpha`` grows with ``x``;
  within the reach it stays below 2e-13 (measured against mpmath for 1e-4 <= alpha <= 100).
  It stays exact in log space when ``x`` underflows (``y`` down to ``-1e300``), the regime of
  very small concentrations.
* otherwise: a central difference in ``alpha`` of ``P`` (``x < alpha``) or ``Q = 1 - P``
  (``x >= alpha``), each from ``torch.special.gammainc``/``gammaincc`` in float64, with step
  ``1e-5 min(alpha, sqrt(alpha))`` (the scale on which ``P`` varies), so truncation and rounding
  errors both stay near 1e-10 relative; one-sided where the stencil would cross a switch between
  the algorithms inside ``gammainc`` (the borders of torch 2.x's Cephes/SciPy port; the tests
  check alpha = 20 and 200 against mpmath so a change there shows).

Cost: a ~20-110 term float64 series (four elementwise operations per term), or two float64
``gammainc`` calls (90-210 ns per sample each on one CPU core), against torch's rational
approximation (Jankowiak & Obermeyer, ICML 2018; ~6-25 ns, within ~1e-3).
:class:`GammaSampleGrad` defers it to the backward pass.

Everything runs in float64 and on any device torch supports.
"""

from __future__ import annotations

import torch
from torch import Tensor

SERIES_TERMS = 128
SERIES_MAX_ALPHA = 100.0
SERIES_REACH = 4.0
RELATIVE_STEP = 1e-5


def _select(t: Tensor, mask: Tensor) -> Tensor:
    """``t`` at the elements ``mask`` picks; a single value (the usual shared parameter) stays a
    0-d tensor that broadcasts, so nothing per-sample is materialised for it."""
    if t.numel() == 1:
        return t.reshape(())
    return t.expand(mask.shape)[mask]


def _series_log_grad(y: Tensor, alpha: Tensor, digamma_1: Tensor) -> Tensor:
    """``alpha``, ``digamma_1 = psi(alpha + 1)`` broadcast against ``y`` (0-d when shared)."""
    x = torch.exp(y)
    term = torch.ones_like(x)
    total = torch.ones_like(x)
    d_total = torch.zeros_like(x)
    harmonic = torch.zeros_like(alpha)
    # Term n is at most prod_{k<=n} x_max / (alpha_min + k); stop once that is under 1e-17 and
    # the ratio is below 1/2 (so the tail is smaller still); the sum itself is >= 1.
    x_max, terms, bound = float(x.max()) if x.numel() else 0.0, 0, 1.0
    a_min = float(alpha.min()) if alpha.numel() else 0.0
    while terms < SERIES_TERMS and (bound > 1e-17 or 2.0 * x_max > a_min + terms + 1):
        terms += 1
        bound *= x_max / (a_min + terms)
    # In place, and the alpha-only recurrences (1/(alpha+n), harmonic sums) on alpha's own shape;
    # plain floats for a shared alpha (four elementwise operations per term).
    if alpha.numel() == 1:
        a, h = float(alpha), 0.0
        for n in range(1, terms + 1):
            h += 1.0 / (a + n)
            term.mul_(x).mul_(1.0 / (a + n))
            total.add_(term)
            d_total.add_(term, alpha=-h)
        return -(total * (y - digamma_1) + d_total) / alpha
    for n in range(1, terms + 1):
        inv = 1.0 / (alpha + n)
        harmonic = harmonic + inv
        term.mul_(x).mul_(inv)
        total.add_(term)
        d_total.sub_(term * harmonic)
    return -(total * (y - digamma_1) + d_total) / alpha


def _asymptotic_regime(alpha: Tensor, x: Tensor) -> Tensor:
    """Where ``torch.special.gammainc`` (Cephes/SciPy ``igam``) switches to Temme's expansion.

    Its value jumps by up to ~1e-10 across these borders; a difference stencil that straddles
    one would amplify the jump, so :func:`_difference_log_grad` steps to one side instead.
    """
    ratio = torch.abs(x - alpha) / alpha
    mid = (alpha > 20.0) & (alpha < 200.0) & (ratio < 0.3)
    return mid | ((alpha > 200.0) & (ratio < 4.5 / torch.sqrt(alpha)))


def _p_or_q(alpha: Tensor, x: Tensor, upper: Tensor) -> Tensor:
    """``-Q(alpha, x)`` where ``upper`` else ``P(alpha, x)`` (same derivative, no cancellation);
    each function is evaluated only where it is used. ``alpha`` broadcasts against ``x``."""
    if bool(upper.all()):
        return -torch.special.gammaincc(alpha, x)
    if not bool(upper.any()):
        return torch.special.gammainc(alpha, x)
    out = torch.empty_like(x)
    out[upper] = -torch.special.gammaincc(_select(alpha, upper), x[upper])
    lower = ~upper
    out[lower] = torch.special.gammainc(_select(alpha, lower), x[lower])
    return out


def _central_difference(alpha: Tensor, x: Tensor, h: Tensor, upper: Tensor) -> Tensor:
    """``(F(alpha + h) - F(alpha - h)) / 2h`` with ``F = -Q`` where ``upper`` else ``P``,
    splitting the elements once so each function runs only where it is used."""

    def diff(fn: object, a: Tensor, xs: Tensor, hs: Tensor) -> Tensor:
        return (fn(a + hs, xs) - fn(a - hs, xs)) / (2.0 * hs)  # type: ignore[operator]

    gammainc, gammaincc = torch.special.gammainc, torch.special.gammaincc
    if bool(upper.all()):
        return -diff(gammaincc, alpha, x, h)
    if not bool(upper.any()):
        return diff(gammainc, alpha, x, h)
    out = torch.empty_like(x)
    lower = ~upper
    out[upper] = -diff(gammaincc, _select(alpha, upper), x[upper], _select(h, upper))
    out[lower] = diff(gammainc, _select(alpha, lower), x[lower], _select(h, lower))
    return out


def _difference_log_grad(y: Tensor, alpha: Tensor, lgamma: Tensor) -> Tensor:
    """``alpha`` and ``lgamma = log Gamma(alpha)`` broadcast against ``y`` (0-d when shared)."""
    x = torch.exp(y)
    h = RELATIVE_STEP * torch.minimum(alpha, torch.sqrt(alpha))
    upper = x >= alpha
    d_p = _central_difference(alpha, x, h, upper)
    # Temme's regime needs alpha > 20, so a stencil can only straddle its border above that.
    if bool((alpha + h > 20.0).any()):
        here = _asymptotic_regime(alpha, x)
        straddle = (_asymptotic_regime(alpha + h, x) != here) | (_asymptotic_regime(alpha - h, x) != here)
    else:
        straddle = torch.zeros_like(upper)
    if bool(straddle.any()):
        # Second-order one-sided stencil on a side that stays in alpha's own regime; where
        # alpha itself is an isolated border point (alpha = 200), the shifted stencil
        # f'(a) ~ (-5 f(a+h) + 8 f(a+2h) - 3 f(a+3h)) / (2h) that avoids it.
        a, hs = _select(alpha, straddle), _select(h, straddle)
        xs, up, rs = x[straddle], upper[straddle], here[straddle]

        def same(k: float) -> Tensor:
            return _asymptotic_regime(a + k * hs, xs) == rs

        right_ok = same(1.0) & same(2.0)
        left_ok = same(-1.0) & same(-2.0)
        step = torch.where(right_ok | ~left_ok, hs, -hs)
        f1 = _p_or_q(a + step, xs, up)
        f2 = _p_or_q(a + 2.0 * step, xs, up)
        one_sided = (4.0 * f1 - 3.0 * _p_or_q(a, xs, up) - f2) / (2.0 * step)
        shifted = (8.0 * f2 - 5.0 * f1 - 3.0 * _p_or_q(a + 3.0 * step, xs, up)) / (2.0 * step)
        d_p = d_p.masked_scatter(straddle, torch.where(right_ok | left_ok, one_sided, shifted))
    log_xp = alpha * y - x - lgamma
    return -d_p * torch.exp(-log_xp)


PER_PARAMETER_MAX = 16


def standard_gamma_log_grad(log_x: Tensor, alpha: Tensor) -> Tensor:
    """``d log(x) / d alpha`` for standard gamma samples given as ``log_x`` (float64 result).

    ``alpha`` broadcasts against ``log_x``; functions of ``alpha`` alone (``lgamma``,
    ``digamma``, the series' harmonic sums) are evaluated on its own shape, not per sample. A
    few distinct concentrations on the trailing dimensions (Beta, a small Dirichlet, a small
    batch) are handled one column at a time, each with a shared scalar ``alpha``.
    """
    y, a = log_x.detach().double(), alpha.detach().double()
    shape = torch.broadcast_shapes(y.shape, a.shape)
    k = a.numel()
    if 1 < k <= PER_PARAMETER_MAX and tuple(shape[len(shape) - a.dim() :]) == tuple(a.shape):
        columns = y.expand(shape).reshape(-1, k)
        flat = a.reshape(k)
        out = torch.empty_like(columns)
        for i in range(k):
            out[:, i] = _log_grad(columns[:, i].contiguous(), flat[i])
        return out.reshape(shape)
    return _log_grad(y.expand(shape), a.reshape(()) if k == 1 else a)


def _full(t: Tensor, shape: torch.Size) -> Tensor:
    """``t`` broadcast to ``shape`` as a tensor of its own."""
    return t if t.shape == shape else t.expand(shape).clone()


def _log_grad(y: Tensor, a: Tensor) -> Tensor:
    """:func:`standard_gamma_log_grad` for ``a`` 0-d or of broadcastable shape."""
    shape = torch.broadcast_shapes(y.shape, a.shape)
    # The series where x <= 1, and for alpha <= SERIES_MAX_ALPHA up to x = alpha + SERIES_REACH
    # (at most ~110 terms). Above the median its rounding error grows with x relative to
    # dP/dalpha = -dQ/dalpha; within the reach it stays below 2e-13 (measured against mpmath
    # for 1e-4 <= alpha <= 100).
    reach = torch.log(a + SERIES_REACH).clamp(min=0.0)
    limit = torch.where(a <= SERIES_MAX_ALPHA, reach, torch.zeros_like(a))
    small = y <= limit
    any_small, all_small = bool(small.any()), bool(small.all())
    if all_small:
        return _full(_series_log_grad(y, a, torch.digamma(a + 1.0)), shape)
    lgamma = torch.lgamma(a)
    if not any_small:
        return _full(_difference_log_grad(y, a, lgamma), shape)
    out = torch.empty(shape, dtype=y.dtype, device=y.device)
    out[small] = _series_log_grad(y[small], _select(a, small), _select(torch.digamma(a + 1.0), small))
    large = ~small
    out[large] = _difference_log_grad(y[large], _select(a, large), _select(lgamma, large))
    return out


def standard_gamma_grad(x: Tensor, alpha: Tensor) -> Tensor:
    """``dx/dalpha`` for standard gamma samples ``x`` (float64 result; 0 where ``x`` underflowed)."""
    x64 = x.detach().double()
    grad = x64 * standard_gamma_log_grad(torch.log(x64), alpha)
    return torch.where(x64 > 0, grad, torch.zeros_like(grad))


def log_standard_gamma(alpha: Tensor) -> Tensor:
    r"""Draw ``log x``, ``x ~ Gamma(alpha, 1)``, without underflow for tiny ``alpha`` (float64).

    Uses ``Gamma(alpha) = Gamma(alpha + 1) * U^{1/alpha}`` for ``alpha < 1`` (Marsaglia & Tsang,
    "A simple method for generating gamma variables", ACM TOMS 2000, sec. 6) in log space.
    """
    a = alpha.detach().double()
    boost = a < 1.0
    if not bool(boost.any()):
        return torch.log(torch._standard_gamma(a))
    g = torch._standard_gamma(torch.where(boost, a + 1.0, a))
    u = torch.rand_like(a).clamp_(min=torch.finfo(torch.float64).tiny)
    return torch.log(g) + torch.where(boost, torch.log(u) / a, torch.zeros_like(a))


class GammaSampleGrad(torch.autograd.Function):
    r"""Identity on a detached standard gamma sample whose backward applies ``dx/dalpha``.

    ``GammaSampleGrad.apply(alpha, sample, log_space)`` returns ``sample`` unchanged; the implicit
    derivative (``d log x/d alpha`` when ``log_space``, else ``dx/d alpha``) is evaluated only
    when a backward pass reaches it, so sampling without gradients pays nothing for it.
    ``alpha`` must broadcast against ``sample``; its gradient is summed back to its own shape
    in float64. First derivatives only.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, alpha: Tensor, sample: Tensor, log_space: bool
    ) -> Tensor:
        ctx.save_for_backward(alpha, sample)
        ctx.log_space = log_space  # type: ignore[attr-defined]
        return sample.view_as(sample)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None, None]:
        alpha, sample = ctx.saved_tensors  # type: ignore[attr-defined]
        if ctx.log_space:  # type: ignore[attr-defined]
            derivative = standard_gamma_log_grad(sample, alpha)
        else:
            derivative = standard_gamma_grad(sample, alpha)
        grad_alpha = (grad.double() * derivative).sum_to_size(alpha.shape)
        return grad_alpha.to(alpha.dtype), None, None
