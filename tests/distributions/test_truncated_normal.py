"""Truncated normal: tails far from loc, one-sided bounds, moments, float32, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from reparam.distributions import TruncatedNormal

INF = math.inf
BOUNDS = [(-1.0, 2.0), (8.0, INF), (-INF, -40.0), (30.0, 30.5), (-INF, 60.0), (-200.0, -199.0), (-3.0, INF)]


@pytest.mark.parametrize(("low", "high"), BOUNDS)
def test_moments_entropy_match_scipy(low: float, high: float) -> None:
    dist = TruncatedNormal(torch.tensor(0.0, dtype=torch.float64), 1.0, low, high)
    ref = stats.truncnorm(low, high)
    assert float(dist.mean) == pytest.approx(ref.mean(), rel=1e-10, abs=1e-12)
    assert float(dist.variance) == pytest.approx(ref.var(), rel=1e-6)
    # scipy's entropy is NaN far out in the tails; integrate -p log p instead.
    lo, hi = max(low, float(dist.mean) - 40 * math.sqrt(ref.var())), min(high, float(dist.mean) + 40)
    entropy = integrate.quad(
        lambda z: -ref.pdf(z) * ref.logpdf(z), lo, hi, points=[float(dist.mean)], limit=200
    )[0]
    assert float(dist.entropy()) == pytest.approx(entropy, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("low", "high"), BOUNDS)
def test_far_tails_give_finite_in_support_samples_and_gradients(
    low: float, high: float, dtype: torch.dtype
) -> None:
    loc = torch.tensor(0.0, dtype=dtype, requires_grad=True)
    scale = torch.tensor(1.0, dtype=dtype, requires_grad=True)
    z = TruncatedNormal(loc, scale, low, high).rsample((5000,))
    assert z.dtype == dtype
    assert bool(torch.isfinite(z).all())
    assert bool((z >= low).all() & (z <= high).all())
    loc_grad, scale_grad = torch.autograd.grad(z.sum(), (loc, scale))
    assert bool(torch.isfinite(loc_grad) & torch.isfinite(scale_grad))
    # dz/dloc lies in [0, 1] for every sample (moving loc never moves a quantile past it), so
    # the sum over 5000 samples lies in [0, 5000].
    assert 0.0 <= float(loc_grad) <= 5000.0 * (1 + 1e-5)


def test_icdf_gradient_in_u_is_inverse_density() -> None:
    # d F^{-1}(u)/du = 1 / p(F^{-1}(u)).
    dist = TruncatedNormal(torch.tensor(0.4, dtype=torch.float64), 1.5, -1.0, 3.0)
    u = torch.tensor([0.01, 0.5, 0.99], dtype=torch.float64, requires_grad=True)
    z = dist.icdf(u)
    (du,) = torch.autograd.grad(z.sum(), u)
    torch.testing.assert_close(du, torch.exp(-dist.log_prob(z.detach())), rtol=1e-10, atol=0)
    torch.testing.assert_close(dist.cdf(z.detach()), u.detach(), rtol=1e-12, atol=1e-14)


def test_expand_and_support() -> None:
    dist = TruncatedNormal(torch.zeros(3), torch.ones(3), -1.0, torch.tensor([1.0, 2.0, INF]))
    big = dist.expand((2, 3))
    assert big.batch_shape == (2, 3) and big.rsample((4,)).shape == (4, 2, 3)
    assert bool(dist.support.check(torch.tensor([0.0, 1.5, 100.0])).all())
    assert not bool(dist.support.check(torch.tensor([-2.0, 0.0, 0.0])).all())
    with pytest.raises(ValueError, match="support"):
        dist.log_prob(torch.tensor([5.0, 5.0, 5.0]))
    unchecked = TruncatedNormal(torch.zeros(3), 1.0, -1.0, 1.0, validate_args=False)
    assert float(unchecked.log_prob(torch.tensor([5.0, 0.0, 0.0]))[0]) == -INF


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"low": 2.0, "high": 1.0}, "low must be < high"),
        ({"low": math.nan, "high": 1.0}, "must not be NaN"),
        ({"scale": -1.0}, "scale"),
    ],
)
def test_bad_input_names_argument_and_fix(kwargs: dict[str, float], match: str) -> None:
    args = {"loc": 0.0, "scale": 1.0, "low": -1.0, "high": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        TruncatedNormal(**args, validate_args=True)


def test_samples_below_loc_and_above_match_scipy_quantiles() -> None:
    # The sampler inverts in log space; compare quantiles at fixed u with scipy's ppf.
    dist = TruncatedNormal(torch.tensor(0.0, dtype=torch.float64), 1.0, 12.0, 14.0)
    u = torch.tensor([1e-6, 0.3, 0.999999], dtype=torch.float64)
    np.testing.assert_allclose(dist.icdf(u).numpy(), stats.truncnorm(12.0, 14.0).ppf(u.numpy()), rtol=1e-12)


@pytest.mark.parametrize(("low", "high"), [(1.0, INF), (-INF, -3.0), (-INF, INF), (8.0, 9.0)])
def test_moment_and_density_gradients_match_scipy_differences(low: float, high: float) -> None:
    # Infinite bounds must not leak inf * 0 = NaN into d/dloc, d/dscale (the score function and
    # the exact gradients of the compare problems use these). Reference: central differences
    # (h = 1e-6, error ~1e-12 * third derivative) of scipy's mean, variance and log-density.
    loc = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(1.2, dtype=torch.float64, requires_grad=True)
    dist = TruncatedNormal(loc, scale, low, high)
    z = torch.tensor(float(dist.mean) + 0.1, dtype=torch.float64)

    def ref(m: float, s: float) -> np.ndarray:
        r = stats.truncnorm((low - m) / s, (high - m) / s, loc=m, scale=s)
        return np.array([r.mean(), r.var(), r.logpdf(float(z))])

    h = 1e-6
    want = np.stack(
        [
            (ref(0.3 + h, 1.2) - ref(0.3 - h, 1.2)) / (2 * h),
            (ref(0.3, 1.2 + h) - ref(0.3, 1.2 - h)) / (2 * h),
        ],
        -1,
    )
    for row, value in enumerate((dist.mean, dist.variance, dist.log_prob(z))):
        got = torch.stack(torch.autograd.grad(value, (loc, scale))).numpy()
        np.testing.assert_allclose(got, want[row], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(("low", "high"), [(-1.0, 2.0), (-3.0, INF), (8.0, INF), (-INF, -7.0), (2.0, 2.1)])
def test_linear_space_quantile_matches_50_digit_inversion(low: float, high: float) -> None:
    # rsample inverts in linear space where the interval's mass is representable (one ndtri):
    # Phi(xi) = Phi(alpha) + u Z below the median, 1 - Phi(xi) = 1 - Phi(beta) + (1 - u) Z above,
    # both sums of positive terms, so xi should match a 50-digit inversion to ~1e-13 relative,
    # out to u = 1 - 2^-52 (where the log-space route loses digits through expm1(log F)).
    import mpmath

    from reparam.distributions._normal_tails import log_diff_ndtr
    from reparam.distributions.truncated_normal import _linear_quantile

    alpha, beta = torch.tensor(low, dtype=torch.float64), torch.tensor(high, dtype=torch.float64)
    u = [1e-15, 1e-6, 0.1, 0.5, 0.9, 1 - 1e-6, 1 - 2**-52]
    got = _linear_quantile(torch.tensor(u, dtype=torch.float64), alpha, beta, log_diff_ndtr(alpha, beta))
    with mpmath.workdps(50):
        lo, hi = (mpmath.ncdf(b) if math.isfinite(b) else float(b > 0) for b in (low, high))
        want = [float(mpmath.sqrt(2) * mpmath.erfinv(2 * (lo + mpmath.mpf(v) * (hi - lo)) - 1)) for v in u]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-13)
