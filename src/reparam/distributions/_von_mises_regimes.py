r"""Von Mises ``F``, ``dF/dkappa`` and ``d^2F/dkappa^2``, each element by its regime, two ways.

Hill's series below ``kappa = 50``, his corrected normal approximation above
(:mod:`reparam.distributions._von_mises_series`). :func:`reparam.distributions._sync.sync_free`
chooses the evaluation per call:

* **host-dispatched** (CPU tensors): a shared concentration is compared with 50 on the host and
  only its regime runs, with the term count its value needs; per-element concentrations are
  split by boolean masks (each regime on its own elements);
* **sync-free** (accelerators, ``torch.compile``/``jit.trace``, ``torch.func``, or inside
  :func:`reparam.distributions.force_sync_free`): both regimes on every element, each with the
  concentration clamped into its own domain, picked by ``torch.where``; the series with
  :data:`~reparam.distributions._von_mises_series.SYNC_FREE_TERMS` terms (enough for every
  ``kappa <= 50``). Nothing is read back to the host. Both agree to rounding
  (``tests/distributions/test_sync_paths.py``).

Inputs: flat ``x`` and ``kappa`` of one element (0-d) or shaped like ``x``, in the dtype the
evaluation is to run in.

Example::

    >>> import torch
    >>> x = torch.tensor([-1.0, 0.5], dtype=torch.float64)
    >>> kappa = torch.tensor(3.0, dtype=torch.float64)
    >>> fast = sample_grad(x, kappa, torch.float64)
    >>> from reparam.distributions import force_sync_free
    >>> with force_sync_free():
    ...     slow = sample_grad(x, kappa, torch.float64)
    >>> bool(torch.allclose(fast, slow, rtol=1e-12, atol=0))
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from reparam.distributions._sync import sync_free
from reparam.distributions._von_mises_series import (
    SERIES_MAX_CONCENTRATION,
    SYNC_FREE_TERMS,
    _cdf_series,
    _cdf_series_grad,
    _log_density,
    _normal_second,
    _series_second,
    normal_cdf_and_grad,
    normal_sample_grad,
)


def _split(kappa: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(series mask, kappa clamped to the series' domain, kappa clamped to the normal's)``."""
    small = kappa < SERIES_MAX_CONCENTRATION
    return small, kappa.clamp(max=SERIES_MAX_CONCENTRATION), kappa.clamp(min=SERIES_MAX_CONCENTRATION)


def _shared_series(kappa: Tensor) -> bool | None:
    """For a single concentration on the host path: whether it takes the series (a host read);
    None when the masks are to decide."""
    if kappa.numel() == 1 and not sync_free(kappa):
        return float(kappa) < SERIES_MAX_CONCENTRATION
    return None


_Series = Callable[[Tensor, Tensor, int | None], tuple[Tensor, ...]]
_Normal = Callable[[Tensor, Tensor], tuple[Tensor, ...]]


def _series_pair(x: Tensor, kappa: Tensor, terms: int | None) -> tuple[Tensor, ...]:
    return _cdf_series(x, kappa, terms)


def _series_second_only(x: Tensor, kappa: Tensor, terms: int | None) -> tuple[Tensor, ...]:
    return (_series_second(x, kappa, terms),)


def _normal_second_only(x: Tensor, kappa: Tensor) -> tuple[Tensor, ...]:
    return (_normal_second(x, kappa),)


def cdf_and_grad(x: Tensor, kappa: Tensor) -> tuple[Tensor, Tensor]:
    """``(F, dF/dkappa)`` at ``x`` (``F`` clamped to ``[0, 1]``)."""
    cdf, d_cdf = _by_regime(x, kappa, _series_pair, normal_cdf_and_grad)
    return cdf.clamp(0.0, 1.0), d_cdf


def cdf_second(x: Tensor, kappa: Tensor) -> Tensor:
    """``d^2F/dkappa^2`` at ``x``, each element by the regime of :func:`cdf_and_grad`."""
    return _by_regime(x, kappa, _series_second_only, _normal_second_only)[0]


def sample_grad(x: Tensor, kappa: Tensor, normal_dtype: torch.dtype) -> Tensor:
    """``g = dx/dkappa = -(dF/dkappa)/p`` at float64 ``x``, ``kappa``, float64: the series in
    float64, the normal approximation's per-sample arithmetic in ``normal_dtype``
    (:func:`~reparam.distributions._von_mises_series.normal_sample_grad`; float32 keeps it within
    4e-6 of float64, the series would not: see :class:`reparam.distributions.VonMises`)."""

    def series(x: Tensor, k: Tensor, terms: int | None) -> tuple[Tensor, ...]:
        return (-_cdf_series_grad(x, k, terms) * torch.exp(-_log_density(x, k)),)

    def normal(x: Tensor, k: Tensor) -> tuple[Tensor, ...]:
        return (normal_sample_grad(x.to(normal_dtype), k).to(x.dtype),)

    return _by_regime(x, kappa, series, normal)[0]


def _by_regime(x: Tensor, kappa: Tensor, series: _Series, normal: _Normal) -> tuple[Tensor, ...]:
    """``series(x, kappa, terms)`` where ``kappa < 50``, ``normal(x, kappa)`` elsewhere (tuples of
    tensors shaped like ``x``), chosen on the host or by ``torch.where`` (module docstring)."""
    shared = _shared_series(kappa)
    if shared is not None:
        k = kappa.reshape(())
        return series(x, k, None) if shared else normal(x, k)
    if sync_free(kappa) or sync_free(x):
        small, k_series, k_normal = _split(kappa)
        pairs = zip(series(x, k_series, SYNC_FREE_TERMS), normal(x, k_normal), strict=True)
        return tuple(torch.where(small, s, n) for s, n in pairs)
    small = kappa < SERIES_MAX_CONCENTRATION
    if bool(small.all()):
        return series(x, kappa, None)
    if not bool(small.any()):
        return normal(x, kappa)
    large = ~small
    outs: list[Tensor] = []
    for s, n in zip(series(x[small], kappa[small], None), normal(x[large], kappa[large]), strict=True):
        out = torch.zeros_like(x)
        out[small], out[large] = s, n
        outs.append(out)
    return tuple(outs)
