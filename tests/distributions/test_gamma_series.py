"""The differentiated series for concentrations below 8, on its own: every evaluation path."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from scipy import special

from reparam.distributions._gamma_series import (
    BULK_LOG_TOLERANCE,
    MATRIX_MAX_ELEMENTS,
    bulk_limit,
    series_log_grad,
    series_terms,
)


def mp_log_grad(x: float, alpha: float) -> float:
    with mpmath.workdps(40):
        a, xm = mpmath.mpf(alpha), mpmath.mpf(x)
        d_p = mpmath.diff(lambda s: mpmath.gammainc(s, 0, xm, regularized=True), a)
        return float(-d_p / mpmath.e ** (a * mpmath.log(xm) - xm - mpmath.loggamma(a)))


@pytest.mark.parametrize("alpha", [1e-3, 0.4, 2.0, 7.9])
def test_every_path_matches_mpmath(alpha: float) -> None:
    # Quantiles from 1e-9 to 1 - 1e-8: the bulk, the tail above alpha + 1.5 sqrt(alpha) + 1.5,
    # and the far tail repaired by differences. Small calls take the matrix form; the same points
    # repeated past MATRIX_MAX_ELEMENTS take Horner's rule; per-element alpha its own loop.
    q = np.array([1e-9, 1e-3, 0.2, 0.5, 0.8, 0.97, 0.999, 1 - 1e-5, 1 - 1e-8])
    x = special.gammaincinv(alpha, q)
    x = x[x > 1e-300]
    want = np.array([mp_log_grad(float(v), alpha) for v in x])
    y = torch.log(torch.tensor(x, dtype=torch.float64))
    a = torch.tensor(alpha, dtype=torch.float64)
    repeats = MATRIX_MAX_ELEMENTS // len(x) + 1
    for got in (
        series_log_grad(y, a),
        series_log_grad(y.repeat(repeats), a)[: len(x)],
        series_log_grad(y, a.expand_as(y)),
    ):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-8)


def test_bulk_term_count_grows_with_the_concentration() -> None:
    # The per-element series takes its bulk term count from the largest concentration; that is
    # enough only if series_terms(bulk_limit(a), a) never decreases in a.
    grid = np.geomspace(1e-4, 8, 3000)
    counts = np.array([series_terms(bulk_limit(float(a)), float(a), BULK_LOG_TOLERANCE) for a in grid])
    assert (np.diff(counts) >= 0).all()
