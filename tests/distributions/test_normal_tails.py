"""log(Phi(b) - Phi(a)) and the inverse of log Phi, against 50-digit mpmath."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch

from reparam.distributions._normal_tails import inv_log_ndtr, log_diff_ndtr


@pytest.mark.parametrize(
    ("a", "b"), [(-1.0, 2.0), (8.0, math.inf), (30.0, 30.5), (-math.inf, -40.0), (-50.0, 50.0)]
)
def test_log_diff_ndtr(a: float, b: float) -> None:
    with mpmath.workdps(50):
        # For a > 0 use Phi(-a) - Phi(-b), avoiding 1 - tiny cancellation even at 50 digits.
        ncdf = lambda v: mpmath.ncdf(v) if math.isfinite(v) else (0 if v < 0 else 1)  # noqa: E731
        diff = ncdf(-a) - ncdf(-b) if a > 0 else ncdf(b) - ncdf(a)
        want = float(mpmath.log(diff))
    got = float(log_diff_ndtr(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)))
    assert got == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("x", [-1000.0, -60.0, -37.0, -5.0, 0.0, 3.0, 8.0])
def test_inv_log_ndtr_round_trips(x: float) -> None:
    with mpmath.workdps(50):
        lp = float(mpmath.log(mpmath.ncdf(x)))
    got = float(inv_log_ndtr(torch.tensor(lp, dtype=torch.float64)))
    assert got == pytest.approx(x, rel=1e-10, abs=1e-7 if x > 5 else 1e-12)
