"""Numerically careful pieces of the standard normal used by the truncated normal.

* ``log_diff_ndtr(a, b) = log(Phi(b) - Phi(a))`` for ``a <= b``, computed on the side of zero
  where neither term is close to one (``Phi(b) - Phi(a) = Phi(-a) - Phi(-b)``), with
  ``log(1 - exp(x))`` evaluated by ``log(-expm1(x))`` or ``log1p(-exp(x))`` as Maechler's note
  "Accurately computing log(1 - exp(-|a|))" (2012) recommends.
* ``inv_log_ndtr(lp)``: ``x`` with ``log Phi(x) = lp`` for any ``lp <= 0``, including
  ``lp < -700`` where ``exp(lp)`` underflows: ``ndtri`` where it is accurate, the asymptotic
  ``x ~ -sqrt(t - log t - log 2 pi)`` (``t = -2 lp``, from the Mills-ratio expansion
  ``log Phi(x) ~ -x^2/2 - log(-x) - log(2 pi)/2``) refined by Newton steps on ``log Phi`` below.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.special import log_ndtr, ndtri

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def log1mexp(x: Tensor) -> Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate on both sides of ``-log 2``."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def log_normal_pdf(x: Tensor) -> Tensor:
    """``log phi(x)``; ``-inf`` at ``x = +-inf``."""
    return -0.5 * x * x - LOG_SQRT_2PI


def finite_or_zero(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(where(isfinite(x), x, 0), isfinite(x))``: feed the first to functions whose derivative is
    infinite at ``+-inf`` and select the answer with the mask, so backward never forms ``0 * inf``."""
    finite = torch.isfinite(x)
    return torch.where(finite, x, torch.zeros_like(x)), finite


def log_ndtr_safe(x: Tensor) -> Tensor:
    """``log Phi(x)`` with a zero (not NaN) gradient at ``x = +-inf``."""
    safe, finite = finite_or_zero(x)
    at_inf = torch.where(x > 0, torch.zeros_like(x), torch.full_like(x, -math.inf))
    return torch.where(finite, log_ndtr(safe), at_inf)


def log_diff_ndtr(a: Tensor, b: Tensor) -> Tensor:
    """``log(Phi(b) - Phi(a))`` for ``a <= b`` (infinite ends allowed), stable in both tails."""
    flip = a > 0
    hi = torch.where(flip, -a, b)
    lo = torch.where(flip, -b, a)
    log_hi = log_ndtr_safe(hi)
    log_lo = log_ndtr_safe(lo)
    ratio, finite = finite_or_zero(torch.clamp(log_lo - log_hi, max=0.0))
    # log_lo = -inf (an infinite bound) contributes log(1 - 0) = 0.
    return log_hi + torch.where(finite, log1mexp(torch.clamp(ratio, max=-1e-300)), torch.zeros_like(ratio))


def inv_log_ndtr(lp: Tensor, newton_steps: int = 4) -> Tensor:
    """Inverse of ``log Phi``: the ``x`` with ``log Phi(x) = lp`` (``lp <= 0``), in ``lp``'s dtype."""
    upper = lp > -math.log(2.0)
    # One ndtri on the side of 1/2 where its argument is accurate, mirrored back.
    x = ndtri(torch.where(upper, -torch.expm1(lp), torch.exp(lp)))
    x = torch.where(upper, -x, x)
    limit = math.log(torch.finfo(lp.dtype).tiny) + 10.0
    far = lp < limit
    # the far tail evaluated everywhere (on a harmless stand-in elsewhere), picked by mask: no
    # host read of the values
    lp_far = torch.where(far, lp, 2.0 * limit)
    t = -2.0 * lp_far
    y = -torch.sqrt(t - torch.log(t) - math.log(2.0 * math.pi))
    for _ in range(newton_steps):
        # Newton on g(y) = log Phi(y) - lp, g'(y) = phi(y) / Phi(y).
        slope = torch.exp(log_normal_pdf(y) - log_ndtr(y))
        y = y - (log_ndtr(y) - lp_far) / slope
    return torch.where(far, y, x)
