r"""The gamma sample derivative dispatched by reading values: the fast path on the CPU.

Same quantity and accuracy as :mod:`reparam.distributions._gamma_regimes` (``d log x / d alpha``
for ``x ~ Gamma(alpha, 1)``, ~2e-9 relative or better against mpmath), but each element is sent
to the one evaluation it needs after a few host reads (the range of ``eta``, the largest ``x``,
a count per regime):

* ``alpha >= 8`` and ``|eta| <= 2.5``: Temme's expansion,
  :func:`reparam.distributions._gamma_asymptotic.asymptotic_log_grad`;
* ``alpha < 8`` and ``x <= alpha + 12 sqrt(alpha) + 40``: the differentiated series with as many
  terms as the largest ``x`` of the call needs,
  :func:`reparam.distributions._gamma_series.series_log_grad` (ill-conditioned elements repaired
  by differences inside it);
* everything else: differences of ``gammainc``,
  :func:`reparam.distributions._gamma_differences.difference_log_grad`.

A read costs nothing on the CPU, and evaluating one regime per element instead of two halves
the work, so :func:`reparam.distributions._gamma_grad.standard_gamma_log_grad` takes this path
for CPU tensors (:func:`reparam.distributions._sync.sync_free` is False) and the sync-free one
elsewhere.

Example::

    >>> import torch
    >>> y = torch.log(torch.tensor([0.5, 2.0, 9.0], dtype=torch.float64))
    >>> host_log_grad(y, torch.tensor(2.0, dtype=torch.float64)).shape
    torch.Size([3])
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch
from torch import Tensor

from reparam.distributions._gamma_asymptotic import (
    MAX_ETA,
    MIN_CONCENTRATION,
    _log_gamma_star_value,
    asymptotic_log_grad,
    eta_of,
)
from reparam.distributions._gamma_differences import difference_log_grad
from reparam.distributions._gamma_regimes import TEMME_TABLE
from reparam.distributions._gamma_series import (
    BULK_LOG_TOLERANCE,
    _horner_shared,
    bulk_limit,
    series_log_grad,
    series_terms,
)
from reparam.distributions._shapes import Scalar, broadcast_shape, select

SERIES_REACH_SCALE = 12.0
SERIES_REACH_SHIFT = 40.0
_FLOATS = (torch.float32, torch.float64)
PER_PARAMETER_MAX = 16  # up to this many distinct trailing concentrations: one scalar call each


def host_log_grad(y: Tensor, a: Tensor, x: Tensor | None = None) -> Tensor:
    """``d log x / d alpha`` at float64 ``y = log x`` (``x = exp(y)`` may be given), ``a``
    (float64) broadcasting against ``y``. A few distinct concentrations on the trailing dimensions
    (Beta, a small Dirichlet, a small batch) go one distinct value at a time, each as a shared
    scalar; functions of ``a`` alone stay on its own shape."""
    x = torch.exp(y) if x is None else x
    k = a.numel()
    if y.numel() == 0 or k == 0:
        return torch.empty(broadcast_shape(y.shape, a.shape), dtype=y.dtype, device=y.device)
    if k == 1:
        return _log_grad(y, a.reshape(()), x)
    shape = broadcast_shape(y.shape, a.shape)
    if 1 < k <= PER_PARAMETER_MAX and tuple(shape[len(shape) - a.dim() :]) == tuple(a.shape):
        y_columns, x_columns = y.expand(shape).reshape(-1, k), x.expand(shape).reshape(-1, k)
        # columns sharing a concentration (a symmetric Dirichlet: all of them) go together
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


def _series_reach(a: Scalar) -> Scalar:
    """The largest ``x`` the series takes for ``a < 8`` (beyond, its term count grows past ~250
    and the condition check would send the element to differences anyway)."""
    root: Scalar = a**0.5
    return a + SERIES_REACH_SCALE * root + SERIES_REACH_SHIFT


def _log_grad(y: Tensor, a: Tensor, x: Tensor) -> Tensor:
    """:func:`host_log_grad` for ``a`` 0-d or of broadcastable shape: each element to one of
    three evaluations (most calls need one only, found by a reduction)."""
    if a.numel() == 1:  # one shared concentration: usually a single evaluation
        a_value = float(a)
        if a_value >= MIN_CONCENTRATION:
            shared_eta = eta_of(y, a)
            low, high = torch.aminmax(shared_eta)
            if float(low) >= -MAX_ETA and float(high) <= MAX_ETA:
                return asymptotic_log_grad(shared_eta, a)
        elif float(x.max()) <= _series_reach(a_value):
            return series_log_grad(y, a, x)
    shape = broadcast_shape(y.shape, a.shape)
    y, x = y.expand(shape), x.expand(shape)
    big = a >= MIN_CONCENTRATION
    regime = torch.zeros(shape, dtype=torch.uint8, device=y.device)  # 0 series, 1 Temme, 2 difference
    eta: Tensor | None = None
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
            result = evaluations[i](None)
            return result if result.shape == shape else result.expand(shape).clone()
    out = torch.empty(shape, dtype=y.dtype, device=y.device)
    for i, count in enumerate(counts):
        if count:
            mask = regime == i
            out[mask] = evaluations[i](mask)
    return out



# ------------------------------------------------------------------ one shared concentration, small calls
LEAN_MAX = 1024  # up to this many samples: series as one matrix of terms, Temme as powers
_FIRST_COLUMN = torch.arange(64) == 0
TEMME_TRUNCATION = 1e-13
_WIDTH_BINS = 64
_NEG_ORDERS = -np.arange(7.0)


def series_safe_limit(a: float) -> float:
    """``a + 3 sqrt(a) + 7``: below it the series' condition number stays below 1e5 for every
    ``a < 8`` (first crossings measured on a fine grid, ``tests/distributions/test_gamma_host.py``),
    ten times inside the 1e6 at which the series hands elements to differences, so a call whose
    largest sample is below it needs no condition check."""
    return a + 3.0 * math.sqrt(a) + 7.0


@functools.lru_cache(maxsize=4096)
def _quantized_terms(log2_x: int, log2_a: int, log_tolerance: float) -> int:
    return series_terms(2.0 ** (log2_x / 16), 2.0 ** (log2_a / 16), log_tolerance)


def cached_series_terms(x_max: float, a: float, log_tolerance: float = 39.2) -> int:
    """:func:`reparam.distributions._gamma_series.series_terms` at ``x_max`` rounded up and ``a``
    rounded down to a grid of ratio ``2^(1/16)`` (memoised): at least as many terms as the exact
    arguments need (the count grows with ``x`` and falls with ``a``; a test checks both)."""
    log2_x = math.ceil(16.0 * math.log2(max(x_max, 1e-300)))
    return _quantized_terms(log2_x, math.floor(16.0 * math.log2(a)), log_tolerance)


# Bernoulli numbers B_2k / (2k) for the asymptotic series of the digamma function.
_DIGAMMA_TAIL = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12)


def digamma_value(a: float) -> float:
    """``psi(a)`` for ``a > 0`` in plain Python (recurrence up to 10, then the asymptotic series
    ``log a - 1/(2a) - sum B_2k/(2k a^2k)``; ~1e-16 absolute error): no tensor call."""
    shift = 0.0
    while a < 10.0:
        shift -= 1.0 / a
        a += 1.0
    inv2, tail = 1.0 / (a * a), 0.0
    for c in reversed(_DIGAMMA_TAIL):
        tail = tail * inv2 + c
    return shift + math.log(a) - 0.5 / a - tail * inv2


def _series_lean(x: Tensor, y: Tensor, a: float, x_max: float) -> Tensor | None:
    """``a d log x / d a`` for ``a < 8`` and every ``x <= series_safe_limit(a)`` (else None):
    the terms ``t_n = prod_{k<=n} x/(a+k)`` as one cumulative product over an
    ``(elements, terms)`` matrix, then ``D - S c = sum_n t_n (H_n - c) - c`` with
    ``c = y - psi(a+1)``, ``S = 1 + sum t_n``, ``D = sum t_n H_n``: five tensor operations
    whatever the number of terms. (Evaluating the ~97% of elements below ``bulk_limit(a)`` with
    fewer terms and the rest again, as the general path does, measured 7-11% slower at 1000
    samples: the extra calls cost more than the terms they save.)"""
    if x_max > series_safe_limit(a):
        return None
    return _series_matrix(x, y, a, cached_series_terms(x_max, a))


def _series_matrix(x: Tensor, y: Tensor, a: float, terms: int) -> Tensor:
    """The series of :func:`_series_lean` to ``terms`` terms, for any ``x`` (accurate where the
    terms suffice and the condition number is moderate: the callers see to both)."""
    inv = [1.0 / (a + k) for k in range(1, terms + 1)]
    table = torch.tensor([inv, list(itertools.accumulate(inv))], dtype=x.dtype)  # 1/(a+k), H_k
    t = torch.cumprod(x.unsqueeze(-1) * table[0], -1)
    centred = y - digamma_value(a + 1.0)
    # D - S (y - psi) = sum_n t_n (H_n - (y - psi)) - (y - psi): elementwise, not a matrix
    # product (BLAS may start threads); same rounding as the two sums taken apart
    return (t * (table[1] - centred.unsqueeze(-1))).sum(-1).sub_(centred)


def _series_large(x: Tensor, a: float, log_given: Tensor | None = None) -> Tensor:
    """``a d log x / d a`` for ``a < 8`` and many elements (float64 result): every element by
    Horner's rule in ``x``'s dtype with the terms that suffice up to ``bulk_limit(a)`` (~97% of
    draws; condition number below ~100 there: in float32 within 1.0e-5 relative of float64,
    measured on 200000 draws at each of ``a`` = 1e-4 ... 7.99), then the elements above it again
    in float64 with all their terms (:func:`_series_matrix`), and the few beyond
    :func:`series_safe_limit` by the general evaluation (:func:`_log_grad`: condition check,
    differences in the far tail)."""
    x_max = x.max().item()
    split = bulk_limit(a)
    s, d = _horner_shared(x, a, cached_series_terms(min(x_max, split), a, BULK_LOG_TOLERANCE))
    y = torch.log(x) if log_given is None else log_given
    value = d.sub_(s.mul_(y - digamma_value(a + 1.0))).double()
    if x_max > split:
        flat = value.reshape(-1)
        tail = (x.reshape(-1) > split).nonzero().squeeze(1)
        x_tail = x.reshape(-1)[tail].double()
        # log x again in float64 where it was rounded to x's dtype (the tail's condition number
        # amplifies its rounding); a given log x (log-space draws) is exact
        y_tail = torch.log(x_tail) if log_given is None else log_given.reshape(-1)[tail].double()
        safe = series_safe_limit(a)
        tail_value = _series_matrix(x_tail, y_tail, a, cached_series_terms(min(x_max, safe), a))
        if x_max > safe:  # the few far out (Q below ~1e-4): the general evaluation
            far = (x_tail > safe).nonzero().squeeze(1)
            a64 = torch.tensor(a, dtype=torch.float64)
            tail_value.index_copy_(0, far, _log_grad(y_tail[far], a64, x_tail[far]).mul_(a))
        flat.index_copy_(0, tail, tail_value)
    return value


def _temme_lean(x: Tensor, a: float, t_max: float) -> Tensor:
    """``d log x / d a`` for ``a >= 8`` and ``|eta| <= 2.5`` by Temme's expansion (the
    economised table of :mod:`reparam.distributions._gamma_regimes` combined for this ``a`` on
    the host, with the factor ``Gamma*(a)/a``), from the powers of ``t = eta / 2.5`` up to the
    degree that ``|t| <= t_max`` needs (the omitted terms sum to below 1e-13 of the constant one:
    ~12 instead of 31 at ``a = 100``)."""
    mu = torch.mul(x, 1.0 / a).sub_(1.0)
    t = torch.log1p(mu).neg_().add_(mu)  # mu - log1p(mu) = eta^2 / 2
    t.mul_(2.0 / MAX_ETA**2).clamp_(min=0.0).sqrt_().copysign_(mu)
    width = _TEMME_WIDTHS[min(math.ceil(t_max * _WIDTH_BINS), _WIDTH_BINS)]
    scale = math.exp(_log_gamma_star_value(a)) / a
    combined = (a**_NEG_ORDERS) @ TEMME_TABLE[:, :width] * scale
    if x.numel() <= LEAN_MAX:
        # powers 1, t, t^2, ... as the cumulative product of (1, t, t, ...); elementwise sum
        powers = torch.where(_FIRST_COLUMN[:width], 1.0, t.unsqueeze(-1)).cumprod(-1)
        return (powers * torch.from_numpy(combined).to(x.dtype)).sum(-1)
    # many elements: Horner's rule, one in-place addcmul per degree (no (elements, degree) matrix)
    constants = torch.from_numpy(combined).to(x.dtype).unbind(0)
    total = torch.full_like(t, float(combined[-1]))
    for c in reversed(constants[:-1]):
        torch.addcmul(c, total, t, out=total)
    return total


def _temme_widths(bins: int) -> list[int]:
    """Entry ``i``: the number of powers of ``t`` that suffice for ``|t| <= i / bins``: the
    omitted terms, bounded by ``sum_j |E_jm| 8^-j`` (the worst concentration, 8) times ``t^m``,
    sum to below ``TEMME_TRUNCATION`` times the smallest constant term over ``a >= 8``
    (``b_0(0) Gamma*(a)/a``, about ``1/a``: relative to the result, as the result is near it)."""
    bound = (float(MIN_CONCENTRATION) ** -np.arange(len(TEMME_TABLE))) @ np.abs(TEMME_TABLE)
    widths = []
    for i in range(bins + 1):
        rest = np.cumsum((bound * (i / bins) ** np.arange(bound.size))[::-1])[::-1]
        below = rest < TEMME_TRUNCATION * abs(TEMME_TABLE[0, 0])
        widths.append(max(int(np.argmax(below)) if below.any() else bound.size, 2))
    return widths


def _eta_value(mu: float) -> float:
    """:func:`reparam.distributions._gamma_asymptotic.eta_of` for one ``mu = x/a - 1``."""
    if mu <= -1.0:
        return -math.inf
    return math.copysign(math.sqrt(max(2.0 * (mu - math.log1p(mu)), 0.0)), mu)


def shared_sample_grad(grad: Tensor, sample: Tensor, a: float, log_space: bool) -> Tensor | None:
    """``sum(grad * dx/da)`` (``sum(grad * d log x/da)`` when ``log_space``: ``sample`` is then
    ``log x``) as a float64 0-d tensor, for one shared concentration ``a`` on the CPU; ``None``
    when some sample needs a rarer regime, or the series would take a call of more than
    :data:`LEAN_MAX` samples (the general :func:`host_log_grad` then takes it). About fifteen
    tensor operations.

    Temme's expansion (``a >= 8``) runs in the sample's dtype: in float32 it stays within
    4.2e-7 relative of float64 (measured on 200000 draws at each of ``a`` = 8 ... 1e4; no
    cancellation, ``eta`` keeps its absolute precision); the series runs in float64 (its
    cancellation, module :mod:`reparam.distributions._gamma_grad`). The sum over samples
    accumulates in float64."""
    n = sample.numel()
    if n == 0 or not 0.0 < a < math.inf or sample.dtype not in _FLOATS:
        return None
    if a >= MIN_CONCENTRATION:
        x = torch.exp(sample) if log_space else sample
        low, high = (v.item() for v in torch.aminmax(x))
        eta_low, eta_high = _eta_value(low / a - 1.0), _eta_value(high / a - 1.0)
        if eta_low < -MAX_ETA or eta_high > MAX_ETA:
            return None
        g = _temme_lean(x, a, max(-eta_low, eta_high) / MAX_ETA)
        scale = 1.0
    else:
        lean: Tensor | None
        if n > LEAN_MAX:
            x = torch.exp(sample) if log_space else sample
            lean = _series_large(x, a, sample if log_space else None)
        else:
            s64 = sample.double()
            x = torch.exp(s64) if log_space else s64
            y = s64 if log_space else torch.log(x)
            lean = _series_lean(x, y, a, x.max().item())
        if lean is None:
            return None
        g, scale = lean, 1.0 / a
    weight = grad if log_space else grad * x
    total = (weight * g).sum(dtype=torch.float64)
    return total if scale == 1.0 else total.mul_(scale)


_TEMME_WIDTHS = _temme_widths(_WIDTH_BINS)
