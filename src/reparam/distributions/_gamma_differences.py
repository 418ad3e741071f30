"""Implicit gamma derivative by central differences of the regularised incomplete gamma function.

The fallback of :mod:`reparam.distributions._gamma_grad` for the far tails (``eta > 2.5`` above
concentration 8, and where the series' condition number passes 1e6): ``dP/dalpha`` by a central
difference of ``P`` (``x < alpha``) or ``Q = 1 - P`` (``x >= alpha``), each from
``torch.special.gammainc``/``gammaincc`` in float64, step ``1e-5 min(alpha, sqrt(alpha))`` (the
scale on which ``P`` varies), so truncation and rounding errors both stay near 1e-10 relative;
one-sided where the stencil would cross a switch between the algorithms inside ``gammainc``
(torch 2.x's Cephes/SciPy port; ``tests/distributions/test_gamma_grad.py`` checks alpha = 20 and
200 against mpmath so a change there shows). Every stencil is evaluated on every element and
picked by mask (no host synchronisation): ~12 incomplete gamma evaluations, a few microseconds
per sample; rare (a fixed-size pool, :mod:`reparam.distributions._gamma_regimes`).
"""

from __future__ import annotations

import torch
from torch import Tensor

RELATIVE_STEP = 1e-5


def _asymptotic_regime(alpha: Tensor, x: Tensor) -> Tensor:
    """Where ``torch.special.gammainc`` (Cephes/SciPy ``igam``) switches to Temme's expansion.

    Its value jumps by up to ~1e-10 across these borders; a difference stencil that straddles
    one would amplify the jump, so :func:`difference_log_grad` steps to one side instead.
    """
    ratio = torch.abs(x - alpha) / alpha
    mid = (alpha > 20.0) & (alpha < 200.0) & (ratio < 0.3)
    return mid | ((alpha > 200.0) & (ratio < 4.5 / torch.sqrt(alpha)))


def _p_or_q(alpha: Tensor, x: Tensor, upper: Tensor) -> Tensor:
    """``-Q(alpha, x)`` where ``upper`` else ``P(alpha, x)`` (same derivative, no cancellation);
    both evaluated everywhere and picked by mask (the elements come here few at a time).
    ``alpha`` broadcasts against ``x``."""
    return torch.where(upper, -torch.special.gammaincc(alpha, x), torch.special.gammainc(alpha, x))


def difference_log_grad(y: Tensor, alpha: Tensor, lgamma: Tensor) -> Tensor:
    """``alpha`` and ``lgamma = log Gamma(alpha)`` broadcast against ``y`` (0-d when shared);
    every stencil evaluated on every element and picked by mask (no host synchronisation)."""
    x = torch.exp(y)
    h = RELATIVE_STEP * torch.minimum(alpha, torch.sqrt(alpha))
    upper = x >= alpha
    d_p = (_p_or_q(alpha + h, x, upper) - _p_or_q(alpha - h, x, upper)) / (2.0 * h)
    # Where the central stencil straddles a border of gammainc's Temme regime (alpha > 20 only):
    # a second-order one-sided stencil on a side that stays in alpha's own regime; where
    # alpha itself is an isolated border point (alpha = 200), the shifted stencil
    # f'(a) ~ (-5 f(a+h) + 8 f(a+2h) - 3 f(a+3h)) / (2h) that avoids it.
    here = _asymptotic_regime(alpha, x)

    def same(k: float) -> Tensor:
        return _asymptotic_regime(alpha + k * h, x) == here

    straddle = ~same(1.0) | ~same(-1.0)
    right_ok = same(1.0) & same(2.0)
    left_ok = same(-1.0) & same(-2.0)
    step = torch.where(right_ok | ~left_ok, h, -h)
    f1 = _p_or_q(alpha + step, x, upper)
    f2 = _p_or_q(alpha + 2.0 * step, x, upper)
    one_sided = (4.0 * f1 - 3.0 * _p_or_q(alpha, x, upper) - f2) / (2.0 * step)
    shifted = (8.0 * f2 - 5.0 * f1 - 3.0 * _p_or_q(alpha + 3.0 * step, x, upper)) / (2.0 * step)
    d_p = torch.where(straddle, torch.where(right_ok | left_ok, one_sided, shifted), d_p)
    log_xp = alpha * y - x - lgamma
    return -d_p * torch.exp(-log_xp)
