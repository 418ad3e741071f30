"""The gamma sample derivative against 40-digit mpmath, including the algorithm borders of gammainc."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

from reparam.distributions._gamma_grad import standard_gamma_log_grad
from reparam.distributions._gamma_sampler import log_standard_gamma

ALPHAS = [1e-4, 1e-2, 0.5, 1.0, 3.0, 20.0, 20.00001, 150.0, 200.0, 1e3, 1e4]


def mp_log_grad(y: float, alpha: float) -> float:
    """``d log x / d alpha = -(dP/dalpha) / (x p(x))`` with ``P`` and its derivative at 40 digits."""
    with mpmath.workdps(40):
        x, a = mpmath.e ** mpmath.mpf(y), mpmath.mpf(alpha)
        d_p = mpmath.diff(lambda s: mpmath.gammainc(s, 0, x, regularized=True), a)
        return float(-d_p / mpmath.e ** (a * mpmath.mpf(y) - x - mpmath.loggamma(a)))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_log_grad_matches_mpmath(alpha: float) -> None:
    torch.manual_seed(3)
    a = torch.full((12,), alpha, dtype=torch.float64)
    y = log_standard_gamma(a)
    got = standard_gamma_log_grad(y, a).numpy()
    want = np.array([mp_log_grad(float(v), alpha) for v in y])
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_log_space_sampler_matches_gamma_quantiles_for_tiny_alpha() -> None:
    # y = log G(alpha + 1) + log(U) / alpha; at alpha = 1e-4 almost every x underflows, but
    # P(log X <= t) = P(alpha, e^t) is still checkable: binomial counts within 5 SE.
    from scipy import special

    alpha, n = 1e-4, 20000
    y = log_standard_gamma(torch.full((n,), alpha, dtype=torch.float64)).numpy()
    for t in (-1e5, -1e4, -1e3, -10.0):
        p = np.exp(alpha * t - special.gammaln(alpha + 1)) if t < -700 else special.gammainc(alpha, np.exp(t))
        count = (y <= t).sum()
        assert abs(count - n * p) < 5 * np.sqrt(n * p * (1 - p)), (t, count, n * p)


@pytest.mark.parametrize("alpha", [2.5, 10.0, 50.0, 100.0, 101.0])
def test_log_grad_matches_mpmath_across_the_series_border(alpha: float) -> None:
    # For alpha <= 100 the series covers x <= alpha + 4 and central differences of gammainc the
    # rest; a grid through x = alpha + 4 (and alpha = 101, differences only above x = 1) checks
    # both sides at 1e-8, the upper tail included (the series' rounding error grows with x).
    x = np.linspace(max(0.5, alpha - 4.0 * np.sqrt(alpha)), alpha + 9.0, 23)
    y = torch.log(torch.tensor(x, dtype=torch.float64))
    got = standard_gamma_log_grad(y, torch.tensor(alpha, dtype=torch.float64)).numpy()
    want = np.array([mp_log_grad(float(v), alpha) for v in y])
    np.testing.assert_allclose(got, want, rtol=1e-8)
