"""Implicit gamma derivative by central differences of the regularised incomplete gamma function.

The fallback of :mod:`reparam.distributions._gamma_grad` for the far tails (``eta > 2.5`` above
concentration 8, and where the series' condition number passes 1e6): ``dP/dalpha`` by a central
difference of ``P`` (``x < alpha``) or ``Q = 1 - P`` (``x >= alpha``), each from
``torch.special.gammainc``/``gammaincc`` in float64, step ``1e-5 min(alpha, sqrt(alpha))`` (the
scale on which ``P`` varies), so truncation and rounding errors both stay near 1e-10 relative;
one-sided where the stencil would cross a switch between the algorithms inside ``gammainc``
(torch 2.x's Cephes/SciPy port; ``tests/distributions/test_gamma_grad.py`` checks alpha = 20 and
200 against mpmath so a change there shows). ~500 ns per sample; rare.
"""

from __future__ import annotations

import torch
from torch import Tensor

from reparam.distributions._shapes import select

RELATIVE_STEP = 1e-5


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
    out[upper] = -torch.special.gammaincc(select(alpha, upper), x[upper])
    lower = ~upper
    out[lower] = torch.special.gammainc(select(alpha, lower), x[lower])
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
    out[upper] = -diff(gammaincc, select(alpha, upper), x[upper], select(h, upper))
    out[lower] = diff(gammainc, select(alpha, lower), x[lower], select(h, lower))
    return out


def difference_log_grad(y: Tensor, alpha: Tensor, lgamma: Tensor) -> Tensor:
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
        a, hs = select(alpha, straddle), select(h, straddle)
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
