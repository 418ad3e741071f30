r"""Implicit gamma derivative below concentration 8: the series for ``P`` differentiated in ``alpha``.

``P(alpha, x) = x^alpha e^{-x} / Gamma(alpha+1) * S``, ``S = sum_n t_n``,
``t_n = prod_{k<=n} x/(alpha+k)`` (Abramowitz & Stegun 6.5.29), differentiated term by term:

.. math::
    \frac{d\log x}{d\alpha} = \frac{D - S\,(\log x - \psi(\alpha+1))}{\alpha},
    \qquad D = \sum_n t_n H_n,\quad H_n = \sum_{k\le n} \frac{1}{\alpha+k},

by Horner's rule from the last term. Above the median ``D`` and ``S (y - psi)`` nearly cancel;
the relative rounding error is ~1e-16 times their condition number, which is computed, and
elements where it passes 1e6 (``Q`` below ~1e-6) are recomputed by differences
(:mod:`reparam.distributions._gamma_differences`). Exact in log space when ``x`` underflows
(``y`` down to ``-1e300``, very small concentrations).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from reparam.distributions._gamma_differences import difference_log_grad
from reparam.distributions._shapes import Scalar, broadcast_shape, select

SERIES_MAX_TERMS = 256
SERIES_MAX_CONDITION = 1e6
BULK_LOG_TOLERANCE = 27.6
MATRIX_MAX_ELEMENTS = 1024
MATRIX_BLOCK = 65536


def bulk_limit(a: Scalar) -> Scalar:
    """``a + 1.5 sqrt(a) + 1.5``: up to here (~97% of samples) the condition number of the
    series stays below ~100, so a 1e-12 truncation (``BULK_LOG_TOLERANCE``) suffices; above it
    the elements are evaluated again with more terms and a condition check."""
    root: Scalar = a**0.5
    return a + 1.5 * root + 1.5


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
    that suffice up to :func:`bulk_limit`, then the elements above it again, with 1e-17
    truncation and more terms, by :func:`_matrix_shared`, their condition numbers checked
    (indices, not boolean masks: masked indexing costs more than the terms it saves). Up to
    ``MATRIX_MAX_ELEMENTS`` elements, :func:`_matrix_shared` takes them all (its cumulative
    product is faster than ~30 Horner calls while the matrix stays in cache)."""
    digamma_1 = float(torch.special.digamma(torch.tensor(a + 1.0, dtype=torch.float64)))
    x_max = float(x.max())
    if x.numel() <= MATRIX_MAX_ELEMENTS:  # few elements: all terms at once, in a handful of calls
        difference, condition = _centred(y, *_matrix_shared(x, a, series_terms(x_max, a)), digamma_1)
        return _repair(difference.div_(a), condition, y, torch.tensor(a, dtype=y.dtype))
    split = bulk_limit(a)
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
        a_ill = select(a, ill)
        value[ill] = difference_log_grad(y.expand(ill.shape)[ill], a_ill, torch.lgamma(a_ill))
    return value


def series_log_grad(y: Tensor, alpha: Tensor, x: Tensor | None = None) -> Tensor:
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
    split = bulk_limit(a_full)
    # Terms needed at the limit, series_terms(bulk_limit(alpha), alpha), grow with alpha (a test
    # checks a fine grid from 1e-4 to 8), so the largest concentration sets them.
    low, high = float(alpha.min()), float(alpha.max())
    bulk_terms = max(series_terms(bulk_limit(b), b, BULK_LOG_TOLERANCE) for b in (low, high))
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
