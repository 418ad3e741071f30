r"""Accurate implicit derivative of standard gamma samples in the concentration.

For ``x ~ Gamma(alpha, 1)`` with ``y = log x`` and ``P(alpha, x)`` the regularised lower
incomplete gamma function, implicit differentiation of ``P(alpha, x) = u`` gives

.. math::
    \frac{dy}{d\alpha} = -\frac{\partial P(\alpha, x)/\partial\alpha}{x\, p(x; \alpha)},
    \qquad x\,p(x;\alpha) = \frac{x^\alpha e^{-x}}{\Gamma(\alpha)}.

(Figurnov, Mohamed & Mnih, "Implicit Reparameterization Gradients", NeurIPS 2018). Each sample
goes to one of three evaluations of it, each accurate to ~2e-9 or better (measured against
40-digit mpmath in ``tests/distributions/test_gamma_grad.py``):

* ``alpha >= 8`` and ``|eta| <= 2.5`` (every sample but those of probability below ~1e-13):
  Temme's uniform asymptotic expansion differentiated in ``alpha``
  (:mod:`reparam.distributions._gamma_asymptotic`): a polynomial in ``eta`` whose coefficients
  are combined once per concentration, ~15-40 multiply-adds per sample.
* ``alpha < 8`` (and the lower tail ``eta < -2.5`` above): the series
  ``P = x^alpha e^{-x} / Gamma(alpha+1) * S``, ``S = sum_n t_n``,
  ``t_n = prod_{k<=n} x/(alpha+k)`` (Abramowitz & Stegun 6.5.29), differentiated term by term:
  ``dy/dalpha = (D - S (y - psi(alpha+1))) / alpha`` with ``D = sum_n t_n H_n``,
  ``H_n = sum_{k<=n} 1/(alpha+k)``, by Horner's rule (one in-place ``addcmul`` per term for a
  shared ``alpha``). Above the median ``D`` and ``S (y - psi)`` nearly cancel; the relative
  rounding error is ~1e-16 times their condition number, which is computed, and elements where
  it passes 1e6 (``Q`` below ~1e-6) are recomputed by differences. It stays exact in log space
  when ``x`` underflows (``y`` down to ``-1e300``, very small concentrations).
* otherwise (``eta > 2.5``, or the series' far tail): a central difference in ``alpha`` of
  ``P`` (``x < alpha``) or ``Q = 1 - P`` (``x >= alpha``), each from
  ``torch.special.gammainc``/``gammaincc`` in float64, with step ``1e-5 min(alpha, sqrt(alpha))``
  (truncation and rounding errors both near 1e-10 relative); one-sided where the stencil would
  cross a switch between the algorithms inside ``gammainc`` (torch 2.x's Cephes/SciPy port).

Cost per sample on one CPU core (shared ``alpha``): ~15-35 ns for Temme, ~30-40 ns for the
series, ~500 ns for differences (rare), against torch's rational approximation (Jankowiak &
Obermeyer, ICML 2018; 6-33 ns, errors up to ~1e-3). :class:`GammaSampleGrad` defers it to the
backward pass. Everything runs in float64 and on any device torch supports.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from reparam.distributions._gamma_asymptotic import (
    MAX_ETA,
    MIN_CONCENTRATION,
    asymptotic_log_grad,
    eta_of,
)
from reparam.distributions._shapes import broadcast_shape

SERIES_MAX_TERMS = 256
SERIES_REACH_SCALE = 12.0
SERIES_REACH_SHIFT = 40.0
SERIES_MAX_CONDITION = 1e6
BULK_LOG_TOLERANCE = 27.6
MATRIX_MAX_ELEMENTS = 1024
MATRIX_BLOCK = 65536
RELATIVE_STEP = 1e-5


def _select(t: Tensor, mask: Tensor) -> Tensor:
    """``t`` at the elements ``mask`` picks; a single value (the usual shared parameter) stays a
    0-d tensor that broadcasts, so nothing per-sample is materialised for it."""
    if t.numel() == 1:
        return t.reshape(())
    return t.expand(mask.shape)[mask]


def series_terms(x_max: float, a_min: float, log_tolerance: float = 39.2) -> int:
    """Terms of ``S = sum_n x^n / ((a+1)...(a+n))`` after which the rest is below
    ``exp(-log_tolerance)`` (1e-17 by default) of the largest term, for every ``x <= x_max`` and
    ``a >= a_min`` (the ratio of consecutive terms is then below 1/2, so the tail is at most
    twice the last term)."""
    log_term, log_peak, n = 0.0, 0.0, 0
    log_x = math.log(x_max) if x_max > 0 else -math.inf
    while n < SERIES_MAX_TERMS:
        n += 1
        log_term += log_x - math.log(a_min + n)
        log_peak = max(log_peak, log_term)
        if log_term < log_peak - log_tolerance and 2.0 * x_max <= a_min + n + 1:
            break
    return n


def _horner_shared(x: Tensor, a: float, n: int) -> tuple[Tensor, Tensor]:
    """``S`` and ``D`` to ``n`` terms for one shared ``a``, by Horner's rule from the last term,
    both sums stacked so each term is one in-place ``addcmul`` (``x`` small, or moderate: the
    bulk; writing in place saves ~30% against a fresh tensor per term)."""
    inv = [1.0 / (a + k) for k in range(n + 1)]  # inv[k] = 1/(a+k); inv[0] unused
    harmonic = list(itertools.accumulate(inv[1:], initial=0.0))  # harmonic[k] = H_k
    # Row k of the stacked constants: (1, H_{k-1}) as a column that broadcasts over x.
    rows = [[[1.0], [harmonic[k - 1]]] for k in range(n + 1)]
    constants = torch.tensor(rows, dtype=x.dtype, device=x.device).unbind(0)
    sums = torch.empty((2, *x.shape), dtype=x.dtype, device=x.device)
    sums[0] = 1.0
    sums[1] = harmonic[n]
    for k in range(n, 1, -1):
        torch.addcmul(constants[k], x, sums, value=inv[k], out=sums)
    r = x * inv[1]
    return r * sums[0] + 1.0, r.mul_(sums[1])


def _matrix_shared(x: Tensor, a: float, n: int) -> tuple[Tensor, Tensor]:
    """``S`` and ``D`` to ``n`` terms for one shared ``a`` with every term at once: a cumulative
    product over an ``(elements, n)`` matrix, then one matrix product with ``(1, H_n)`` (a few
    calls instead of ``n``: for small calls and the few elements of the tail). Blocks of at most
    ``MATRIX_BLOCK`` entries keep the matrix in cache (``cumprod`` slows ~4x per entry past it)."""
    k = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    inv = 1.0 / (a + k)
    weights = torch.stack([torch.ones_like(inv), inv.cumsum(0)], -1)  # columns: 1 and H_n
    flat = x.reshape(-1, 1)
    rows = max(1, MATRIX_BLOCK // n)
    sums = torch.cat([torch.cumprod(block * inv, dim=1) @ weights for block in flat.split(rows)])
    return (sums[:, 0] + 1.0).reshape(x.shape), sums[:, 1].reshape(x.shape)


def _centred(y: Tensor, s: Tensor, d: Tensor, digamma_1: Tensor | float) -> tuple[Tensor, Tensor]:
    """``D - S (y - psi(alpha+1))`` and its condition number: above the median the two nearly
    cancel, and the relative rounding error of the result is about 1e-16 times the condition
    number (measured against mpmath)."""
    centred = s.mul_(y - digamma_1)
    difference = d - centred
    return difference, (d.abs() + centred.abs()) / difference.abs()


def _series_shared(y: Tensor, x: Tensor, a: float) -> Tensor:
    """The series for one shared ``a``: every element by :func:`_horner_shared` with the terms
    that suffice below ``a + 1.5 sqrt(a) + 1.5`` (~97% of samples; the condition number there
    is below ~100, so a 1e-12 truncation suffices), then the elements above it again, with 1e-17
    truncation and more terms, by :func:`_matrix_shared`, their condition numbers checked
    (indices, not boolean masks: masked indexing costs more than the terms it saves). Up to
    ``MATRIX_MAX_ELEMENTS`` elements, :func:`_matrix_shared` takes them all (its cumulative
    product is faster than ~30 Horner calls while the matrix stays in cache)."""
    digamma_1 = float(torch.special.digamma(torch.tensor(a + 1.0, dtype=torch.float64)))
    x_max = float(x.max())
    if x.numel() <= MATRIX_MAX_ELEMENTS:  # few elements: all terms at once, in a handful of calls
        difference, condition = _centred(y, *_matrix_shared(x, a, series_terms(x_max, a)), digamma_1)
        return _repair(difference.div_(a), condition, y, torch.tensor(a, dtype=y.dtype))
    split = a + 1.5 * math.sqrt(a) + 1.5
    s, d = _horner_shared(x, a, series_terms(min(x_max, split), a, BULK_LOG_TOLERANCE))
    value = d.sub_(s.mul_(y - digamma_1)).div_(a)
    if x_max > split:
        flat = value.reshape(-1)
        tail = (x.reshape(-1) > split).nonzero().squeeze(1)
        x_tail, y_tail = x.reshape(-1)[tail], y.reshape(-1)[tail]
        s_tail, d_tail = _matrix_shared(x_tail, a, series_terms(x_max, a))
        difference, condition = _centred(y_tail, s_tail, d_tail, digamma_1)
        flat[tail] = _repair(difference.div_(a), condition, y_tail, torch.tensor(a, dtype=y.dtype))
    return value


def _repair(value: Tensor, condition: Tensor, y: Tensor, a: Tensor) -> Tensor:
    """``value`` with the elements whose condition number exceeds ``SERIES_MAX_CONDITION`` (far
    in the upper tail, ``Q`` below ~1e-6) recomputed by differences."""
    ill = condition > SERIES_MAX_CONDITION
    if bool(ill.any()):
        a_ill = _select(a, ill)
        value[ill] = _difference_log_grad(y.expand(ill.shape)[ill], a_ill, torch.lgamma(a_ill))
    return value


def _series_log_grad(y: Tensor, alpha: Tensor, x: Tensor | None = None) -> Tensor:
    """``(D - S (y - psi(alpha+1))) / alpha`` with ``D = -dS/dalpha = sum_n t_n H_n``,
    ``t_n = prod_{k<=n} x/(alpha+k)``, ``H_n = sum_{k<=n} 1/(alpha+k)`` (``x = exp(y)``, passed
    when known); ``alpha`` 0-d (shared: :func:`_series_shared`) or broadcasting against ``y``
    (:func:`_series_elementwise`)."""
    x = torch.exp(y) if x is None else x
    if x.numel() == 0:
        return torch.empty_like(y)
    if alpha.numel() == 1:
        return _series_shared(y, x, float(alpha))
    # Per-element alpha: as for a shared one, every element first with the terms that suffice
    # below alpha + 1.5 sqrt(alpha) + 1.5, then the elements above it again, with all their
    # terms and a condition check.
    a_full = alpha.expand(x.shape)
    split = a_full + 1.5 * torch.sqrt(a_full) + 1.5
    # Terms needed at the split, f(alpha) = series_terms(split(alpha), alpha), grow with alpha
    # (checked on a fine grid from 1e-4 to 8), so the largest concentration sets them.
    low, high = float(alpha.min()), float(alpha.max())
    bulk_terms = max(series_terms(b + 1.5 * math.sqrt(b) + 1.5, b, BULK_LOG_TOLERANCE) for b in (low, high))
    value = _series_elementwise(y, x, alpha, bulk_terms)[0].div_(alpha)
    tail = (x > split).reshape(-1).nonzero().squeeze(1)
    if len(tail):
        x_tail, y_tail, a_tail = x.reshape(-1)[tail], y.reshape(-1)[tail], a_full.reshape(-1)[tail]
        terms = series_terms(float(x_tail.max()), float(a_tail.min()))
        difference, condition = _series_elementwise(y_tail, x_tail, a_tail, terms)
        value.reshape(-1)[tail] = _repair(difference.div_(a_tail), condition, y_tail, a_tail)
    return value


def _series_elementwise(y: Tensor, x: Tensor, alpha: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """``D - S (y - psi(alpha+1))`` to ``n`` terms and its condition number, for ``alpha``
    broadcasting against ``x``: ``H_n = psi(alpha+n+1) - psi(alpha+1)``, then
    ``H_{k-1} = H_k - 1/(alpha+k)`` on the way down, so memory stays O(numel). Five in-place
    operations per term, ``S`` and ``D`` stacked as in :func:`_horner_shared` with the per-element
    constants ``(1, H_{k-1})``."""
    digamma_1 = torch.digamma(alpha + 1.0)
    shape = broadcast_shape(x.shape, alpha.shape)
    constants = torch.empty((2, *shape), dtype=x.dtype, device=x.device)
    constants[0] = 1.0
    constants[1] = torch.digamma(alpha + (n + 1.0)) - digamma_1  # H_n
    harmonic = constants[1]
    sums = constants.clone()  # (1, H_n): the innermost Horner values
    shifted = (alpha + (n + 1.0)).expand(shape).clone()
    inv, r = torch.empty(shape, dtype=x.dtype, device=x.device), torch.empty_like(x)
    for k in range(n, 0, -1):
        torch.reciprocal(shifted.sub_(1.0), out=inv)  # 1/(alpha+k)
        torch.mul(x, inv, out=r)
        harmonic.sub_(inv)  # H_{k-1}
        if k > 1:
            torch.addcmul(constants, r, sums, out=sums)
        else:
            sums[0].mul_(r).add_(1.0)
            sums[1].mul_(r)
    return _centred(y, sums[0], sums[1], digamma_1)


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


def _series_reach(a: Tensor) -> Tensor:
    """``log`` of the largest ``x`` the series takes for ``a < 8`` (beyond, its term count grows
    past ~250 and the condition check would send the element to differences anyway)."""
    return torch.log(a + SERIES_REACH_SCALE * torch.sqrt(a) + SERIES_REACH_SHIFT)


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
        elif float(x.max()) <= a_value + SERIES_REACH_SCALE * math.sqrt(a_value) + SERIES_REACH_SHIFT:
            return _series_log_grad(y, a, x)
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
        regime = torch.where(~big & (y > _series_reach(a)), 2, regime)
    counts = torch.bincount(regime.reshape(-1), minlength=3).tolist()

    def series(mask: Tensor | None) -> Tensor:
        if mask is None:
            return _series_log_grad(y, a, x)
        return _series_log_grad(y[mask], _select(a, mask), x[mask])

    def temme(mask: Tensor | None) -> Tensor:
        assert eta is not None
        if mask is None:
            return asymptotic_log_grad(eta, a)
        return asymptotic_log_grad(eta[mask], _select(a, mask))

    def difference(mask: Tensor | None) -> Tensor:
        if mask is None:
            return _difference_log_grad(y, a, torch.lgamma(a))
        return _difference_log_grad(y[mask], _select(a, mask), _select(torch.lgamma(a), mask))

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
