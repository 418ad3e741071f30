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


def log_diff_ndtr(a: Tensor, b: Tensor) -> Tensor:
    """``log(Phi(b) - Phi(a))`` for ``a <= b`` (infinite ends allowed), stable in both tails."""
    flip = a > 0
    hi = torch.where(flip, -a, b)
    lo = torch.where(flip, -b, a)
    log_hi = log_ndtr(hi)
    return log_hi + log1mexp(torch.clamp(log_ndtr(lo) - log_hi, max=0.0))


def inv_log_ndtr(lp: Tensor, newton_steps: int = 4) -> Tensor:
    """Inverse of ``log Phi``: the ``x`` with ``log Phi(x) = lp`` (``lp <= 0``), in ``lp``'s dtype."""
    upper = lp > -math.log(2.0)
    x = torch.where(upper, -ndtri(-torch.expm1(lp)), ndtri(torch.exp(lp)))
    far = lp < math.log(torch.finfo(lp.dtype).tiny) + 10.0
    if bool(far.any()):
        t = -2.0 * lp[far]
        y = -torch.sqrt(t - torch.log(t) - math.log(2.0 * math.pi))
        for _ in range(newton_steps):
            # Newton on g(y) = log Phi(y) - lp, g'(y) = phi(y) / Phi(y).
            slope = torch.exp(log_normal_pdf(y) - log_ndtr(y))
            y = y - (log_ndtr(y) - lp[far]) / slope
        x = x.masked_scatter(far, y)
    return x
