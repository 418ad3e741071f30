"""Central differences of gammainc: the far-tail fallback of the gamma derivative, on its own."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from scipy import special

from reparam.distributions._gamma_differences import difference_log_grad


def mp_log_grad(x: float, alpha: float) -> float:
    with mpmath.workdps(40):
        a, xm = mpmath.mpf(alpha), mpmath.mpf(x)
        lower, upper, sign = (0, xm, -1) if xm < a else (xm, mpmath.inf, 1)
        d = sign * mpmath.diff(lambda s: mpmath.gammainc(s, lower, upper, regularized=True), a)
        return float(d / mpmath.e ** (a * mpmath.log(xm) - xm - mpmath.loggamma(a)))


def check(x: np.ndarray, alpha: float) -> None:
    y = torch.log(torch.tensor(x, dtype=torch.float64))
    a = torch.tensor(alpha, dtype=torch.float64)
    got = difference_log_grad(y, a, torch.lgamma(a)).numpy()
    want = np.array([mp_log_grad(float(v), alpha) for v in x])
    np.testing.assert_allclose(got, want, rtol=1e-8)


@pytest.mark.parametrize("alpha", [0.5, 3.0, 9.0, 25.0, 250.0])
def test_far_tails_match_mpmath(alpha: float) -> None:
    # Where the dispatcher uses it: Q from 1e-7 down to 1e-14 (and a lower tail point).
    check(special.gammainccinv(alpha, np.array([1e-7, 1e-10, 1e-14, 1 - 1e-6])), alpha)


@pytest.mark.parametrize("alpha", [20.0, 20.00001, 150.0, 200.0, 201.0])
def test_stencils_beside_the_borders_inside_gammainc_match_mpmath(alpha: float) -> None:
    # torch's gammainc switches algorithm at alpha = 20 and 200 near x = alpha (its values jump by
    # ~1e-10 there); a stencil straddling a switch steps to one side.
    check(alpha + np.sqrt(alpha) * np.array([-1.5, -0.5, 0.0, 0.4, 1.0, 2.0]), alpha)
