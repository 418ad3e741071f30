r"""The gamma sample derivative with every regime chosen by masks: no host synchronisation.

``d log x / d alpha`` for ``x ~ Gamma(alpha, 1)`` (see :mod:`reparam.distributions._gamma_grad`)
is evaluated for every element by both cheap evaluations, each on inputs clamped into its own
domain, and the right one is picked by ``torch.where``:

* Temme's uniform expansion (``alpha >= 8``, ``|eta| <= 2.5``): all six orders, each an
  economised polynomial in ``t = eta / 2.5`` fixed at import (31 coefficients at most; the
  coefficients combine linearly, so a shared concentration costs one ``(7,) @ (7, 31)`` product
  on the device, a per-element one a ``(n, 7) @ (7, 31)`` product);
* the differentiated series (``alpha < 8``) with the terms that suffice up to
  ``alpha + 1.5 sqrt(alpha) + 1.5`` at every ``alpha < 8`` (:data:`BULK_TERMS`), on ``x`` clamped
  there (condition number below ~100, no check needed).

Then two fixed-size pools (:mod:`reparam.distributions._pool`) take the rest:

1. ``alpha < 8`` and ``x`` up to ``alpha + 4 sqrt(alpha) + 6`` (at most 3.7% of samples): the
   series with :data:`MID_TERMS` terms (all at once, a cumulative product) and its condition
   number;
2. ``alpha < 8`` beyond that (``Q`` below 2e-5), ``alpha >= 8`` with ``|eta| > 2.5`` (below
   1e-12), and pool 1's ill-conditioned elements (condition number above 1e6: ``Q`` below
   ~1e-6): central differences of ``gammainc``
   (:func:`reparam.distributions._gamma_differences.difference_log_grad`).

With ``sampled`` (the backward pass, whose points are draws from ``Gamma(alpha)``) the pools are
sized for those probabilities (:func:`reparam.distributions._pool.budget`: overflow below 1e-15
per call; an element beyond a pool keeps the cheaper, less accurate value); otherwise (any
points) every pool has room for every element. Accuracy as the host-dispatched evaluation it
replaces: ~2e-9 relative or better in float64 (``tests/distributions/test_gamma_grad.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from reparam.distributions._gamma_asymptotic import (
    _TAYLOR_TOLERANCE,
    MAX_ETA,
    MIN_CONCENTRATION,
    B,
    degrees_for,
    economized,
    eta_of,
    log_gamma_star,
)
from reparam.distributions._gamma_differences import difference_log_grad
from reparam.distributions._gamma_series import (
    BULK_LOG_TOLERANCE,
    MATRIX_BLOCK,
    MATRIX_MAX_ELEMENTS,
    SERIES_MAX_CONDITION,
    _centred,
    bulk_limit,
    series_terms,
)
from reparam.distributions._pool import budget, gather, pool_index, scatter_pool

ORDERS = 6


def mid_limit(a: Tensor) -> Tensor:
    """``a + 4 sqrt(a) + 6``: the end of pool 1 (``Q`` there is below 2e-5 for ``a < 8``)."""
    return a + 4.0 * a.sqrt() + 6.0


_A = MIN_CONCENTRATION  # the worst case of every term count below (they grow with a, tested)
BULK_TERMS = series_terms(_A + 1.5 * _A**0.5 + 1.5, _A, BULK_LOG_TOLERANCE)
MID_TERMS = series_terms(_A + 4.0 * _A**0.5 + 6.0, _A)
MID_RATE = 0.04  # P(x > a + 1.5 sqrt(a) + 1.5) <= 0.037 for a < 8 (scipy)
FAR_RATE = 3e-5  # P(x > a + 4 sqrt(a) + 6) <= 1.9e-5 for a < 8; P(|eta| > 2.5) < 1e-12 above


def _economised_table() -> list[list[float]]:
    """Row ``j``: the order-``j`` coefficient polynomial of Temme's expansion economised on
    ``|eta| <= 2.5`` in ``t = eta / 2.5``, to ``1e-14`` after its weight ``8^-j`` (the worst
    case, ``a = 8``), zero-padded to one length."""
    degrees = degrees_for(MAX_ETA, ORDERS, MIN_CONCENTRATION)
    rows = [
        economized(list(B[j][: degrees[j] + 1]), MAX_ETA, _TAYLOR_TOLERANCE / MIN_CONCENTRATION**-j)
        for j in range(ORDERS + 1)
    ]
    width = max(len(r) for r in rows)
    return [r + [0.0] * (width - len(r)) for r in rows]


_TEMME = _economised_table()
TEMME_TABLE = np.array(_TEMME)  # (orders + 1, width), for combining on the host


def multiply_add(c: Tensor, total: Tensor, t: Tensor) -> Tensor:
    """``c + total * t`` (one step of Horner's rule): into ``total`` in place (no allocation per
    step), except under ``torch.func`` transforms, where a new tensor is returned (``vmap`` has
    no batching rule for ``addcmul``'s ``out=`` form, and ``total`` may be unbatched where ``t``
    is batched)."""
    if torch._C._are_functorch_transforms_active():
        return torch.addcmul(c, total, t)
    return torch.addcmul(c, total, t, out=total)


def temme_log_grad(eta: Tensor, a: Tensor) -> Tensor:
    """Temme's ``d log x / da`` for ``|eta| <= 2.5``, ``a >= 8`` broadcasting against ``eta``;
    the coefficients in ``t`` are ``sum_j a^-j E_j`` (one small matrix product on ``a``'s shape).
    Up to :data:`MATRIX_MAX_ELEMENTS` elements by one product with the powers of ``t``, above by
    Horner's rule."""
    table = torch.tensor(_TEMME, dtype=eta.dtype, device=eta.device)  # (orders + 1, width)
    powers = a.unsqueeze(-1).pow(-torch.arange(ORDERS + 1, dtype=eta.dtype, device=eta.device))
    coefficients = powers @ table  # (width,) shared, (n, width) per element
    t = eta / MAX_ETA
    width = table.shape[1]
    if eta.numel() <= MATRIX_MAX_ELEMENTS:
        t_powers = t.unsqueeze(-1).pow(torch.arange(width, dtype=eta.dtype, device=eta.device))
        shared = a.numel() == 1
        total = t_powers @ coefficients.reshape(width) if shared else (t_powers * coefficients).sum(-1)
    else:
        columns = coefficients.unbind(-1)
        total = columns[width - 1].expand(t.shape).clone()
        for c in reversed(columns[:-1]):
            total = multiply_add(c, total, t)
    return total.mul_(torch.exp(log_gamma_star(a)) / a)


def series_matrix(y: Tensor, x: Tensor, a: Tensor, terms: int) -> tuple[Tensor, Tensor]:
    """(value, condition number) of the series to ``terms`` terms with every term at once: the
    terms ``t_n`` as a cumulative product over an ``(elements, terms)`` matrix, ``S = 1 + sum t_n``,
    ``D = sum t_n H_n`` (a handful of calls whatever ``terms`` is: for small calls and pools);
    ``a`` 0-d or like ``x`` (flat). Rows in blocks of :data:`MATRIX_BLOCK` entries."""
    k = torch.arange(1, terms + 1, dtype=x.dtype, device=x.device)
    rows = max(1, MATRIX_BLOCK // terms)
    a_rows = a.expand(x.shape)
    s_parts, d_parts = [], []
    for x_block, a_block in zip(x.split(rows), a_rows.split(rows), strict=True):
        inv = 1.0 / (a_block.unsqueeze(-1) + k)
        t = torch.cumprod(x_block.unsqueeze(-1) * inv, -1)
        s_parts.append(t.sum(-1).add_(1.0))
        d_parts.append((t * inv.cumsum(-1)).sum(-1))
    s, d = torch.cat(s_parts), torch.cat(d_parts)
    difference, condition = _centred(y, s, d, torch.digamma(a + 1.0))
    return difference.div_(a), condition


def _bulk(y: Tensor, x: Tensor, a: Tensor, terms: int) -> Tensor:
    """The series ``(D - S (y - psi(a+1))) / a`` to ``terms`` terms, ``a`` with ``x``'s number of
    dimensions (broadcasting), one ``addcmul`` per term: Horner's rule for ``(S, D)`` rescaled
    by ``w_k = 1/((a+k+1)...(a+n))``, so the per-term factor ``1/(a+k)`` moves into the constants
    ``(1, H_k) (a+k+1)...(a+n)``, computed once on ``a``'s own shape (below 1e60 for ``a < 8``,
    ``n <= 41``; ``x`` must be clamped to the bulk)."""
    k = torch.arange(1, terms + 1, dtype=x.dtype, device=x.device).reshape((terms,) + (1,) * a.dim())
    shifted = a + k  # (terms, *a.shape): a + 1 ... a + n
    first = torch.zeros_like(shifted[:1])
    harmonic = torch.cat([first, shifted.reciprocal().cumsum(0)])  # harmonic[k] = H_k
    # scale[k] = (a+k+1)...(a+n) for k = 0..n (scale[n] = 1): a reverse cumulative product
    scale = torch.cat([torch.flip(torch.cumprod(torch.flip(shifted, (0,)), 0), (0,)), first + 1.0])
    constants = torch.stack([scale, harmonic * scale], 1)  # (n + 1, 2, *a.shape)
    # (stacked, not filled in place: under vmap x may be batched where a is not)
    sums = torch.stack([torch.ones_like(x), harmonic[terms].expand_as(x)])
    for step in range(terms - 1, 0, -1):  # sigma_step = constants[step] + x sigma_{step+1}
        sums = multiply_add(constants[step], sums, x)
    weight = x / scale[0]  # x / ((a+1)...(a+n))
    s = sums[0].mul(weight).add_(1.0)
    d = sums[1].mul_(weight)
    return d.sub_(s.mul_(y - torch.digamma(a + 1.0))).div_(a)


def regime_log_grad(y: Tensor, a: Tensor, x: Tensor, sampled: bool = False) -> Tensor:
    """``d log x / d alpha`` at float64 ``y = log x`` (``x`` given, same shape), ``a``
    broadcasting against ``y`` (functions of ``a`` alone stay on its own shape); every regime by
    masks and fixed-size pools (module docstring)."""
    shape, n = y.shape, y.numel()
    a = a.reshape((1,) * (y.dim() - a.dim()) + a.shape)
    small = a < MIN_CONCENTRATION
    a_small = torch.where(small, a, torch.ones_like(a))
    a_big = torch.where(small, torch.full_like(a, MIN_CONCENTRATION), a)
    eta = eta_of(y, a_big)
    value = temme_log_grad(eta.clamp(-MAX_ETA, MAX_ETA), a_big)
    # the series' bulk on x clamped to its domain
    limit = bulk_limit(a_small)
    x_bulk = torch.minimum(x, limit)
    y_bulk = torch.minimum(y, torch.log(limit))
    if n <= MATRIX_MAX_ELEMENTS:
        a_each = a_small.expand(shape).reshape(-1)
        flat = series_matrix(y_bulk.reshape(-1), x_bulk.reshape(-1), a_each, BULK_TERMS)
        bulk = flat[0].reshape(shape)
    else:
        bulk = _bulk(y_bulk, x_bulk, a_small, BULK_TERMS)
    value = torch.where(small, bulk, value)
    a_flat = a.expand(shape).reshape(-1)
    y_flat, x_flat = y.reshape(-1), x.reshape(-1)
    # pool 1: the series' near tail
    mid = mid_limit(a_small)
    near = torch.logical_and(torch.logical_and(x > limit, x <= mid), small)  # (logical_and: ~7x `&` on CPU)
    index = pool_index(near, budget(n, MID_RATE, sampled))
    pooled, condition = series_matrix(
        gather(y_flat, index, 0.0), gather(x_flat, index, 1.0), gather(a_flat, index, 1.0), MID_TERMS
    )
    value = scatter_pool(value, index, pooled)
    ill = scatter_pool(torch.zeros_like(y, dtype=torch.bool), index, condition > SERIES_MAX_CONDITION)
    # pool 2: everything else by differences
    far = torch.where(small, x > mid, eta.abs() > MAX_ETA).logical_or_(ill)
    index = pool_index(far, budget(n, FAR_RATE, sampled))
    a_p = gather(a_flat, index, 1.0)
    pooled = difference_log_grad(gather(y_flat, index, 0.0), a_p, torch.lgamma(a_p))
    return scatter_pool(value, index, pooled)
