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

import torch
from torch import Tensor

from reparam.distributions._gamma_asymptotic import (
    MAX_ETA,
    MIN_CONCENTRATION,
    asymptotic_log_grad,
    eta_of,
)
from reparam.distributions._gamma_differences import difference_log_grad
from reparam.distributions._gamma_series import series_log_grad
from reparam.distributions._shapes import Scalar, broadcast_shape, select

SERIES_REACH_SCALE = 12.0
SERIES_REACH_SHIFT = 40.0
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
