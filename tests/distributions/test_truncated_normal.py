"""Truncated normal: tails far from loc, one-sided bounds, moments, float32, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from reparam.distributions import TruncatedNormal
from reparam.distributions._support import MixedBounds

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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("loc", "scale", "low", "high"),
    [(1e7, 1.0, 5.0, 5.001), (1e8, 1e-8, 5.0, 5.001), (1e8, 1e-8, 5.0, INF), (-1e7, 1.0, -INF, -5.0)],
)
def test_loc_far_from_the_interval_keeps_samples_inside(
    loc: float, scale: float, low: float, high: float, dtype: torch.dtype
) -> None:
    # loc + scale * xi rounds past a bound when loc is 1e6 interval widths away (72 of 20000
    # at loc 1e7 before the clamp); one-sided supports are open, so the bound itself is out too.
    dist = TruncatedNormal(torch.tensor(loc, dtype=dtype), torch.tensor(scale, dtype=dtype), low, high)
    z = dist.rsample((20000,))
    assert bool(dist.support.check(z).all())
    assert bool(torch.isfinite(dist.log_prob(z)).all())  # validated: no support error either
    if math.isinf(high) or math.isinf(low):
        assert bool((z != low).all() & (z != high).all())
        unconstrained = torch.distributions.biject_to(dist.support).inv(z)
        assert bool(torch.isfinite(unconstrained).all())


def test_support_constraint_follows_the_kind_of_bounds() -> None:
    constraints = torch.distributions.constraints
    zeros = torch.zeros(2)
    cases = [
        ((-INF, INF), type(constraints.real)),
        ((0.0, INF), constraints.greater_than),
        ((-INF, 0.0), constraints.less_than),
        ((0.0, 1.0), constraints.interval),
        ((torch.tensor([0.0, -INF]), INF), MixedBounds),
    ]
    for (low, high), kind in cases:
        assert isinstance(TruncatedNormal(zeros, 1.0, low, high).support, kind), (low, high)


def test_mixed_bounds_bijection_round_trips_with_the_right_jacobian() -> None:
    low = torch.tensor([0.0, -INF, -INF, 1.0], dtype=torch.float64)
    high = torch.tensor([INF, 2.0, INF, 3.0], dtype=torch.float64)
    dist = TruncatedNormal(torch.zeros(4, dtype=torch.float64), 1.5, low, high)
    transform = torch.distributions.biject_to(dist.support)
    x = torch.linspace(-30.0, 30.0, 61, dtype=torch.float64).unsqueeze(-1).expand(61, 4).clone()
    y = transform(x)
    assert bool(dist.support.check(y).all()) and bool(torch.isfinite(y).all())
    z = dist.sample((500,))
    torch.testing.assert_close(transform(transform.inv(z)), z, rtol=1e-12, atol=1e-12)
    # log|dy/dx| against autograd, elementwise, where y is not saturated at a bound.
    x_mid = torch.linspace(-3.0, 3.0, 7, dtype=torch.float64).unsqueeze(-1).expand(7, 4).clone()
    x_mid.requires_grad_(True)
    (dy,) = torch.autograd.grad(transform(x_mid).sum(), x_mid)
    jac = transform.log_abs_det_jacobian(x_mid, transform(x_mid))
    torch.testing.assert_close(jac, torch.log(dy), rtol=1e-12, atol=1e-12)
    (grad,) = torch.autograd.grad(transform(x_mid).sum(), x_mid)
    assert bool(torch.isfinite(grad).all())
