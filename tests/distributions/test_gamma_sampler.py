"""The vectorised Marsaglia-Tsang sampler draws exact gamma variables for every concentration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special, stats
from seeds import seeded

from reparam.distributions import Gamma
from reparam.distributions._gamma_sampler import NATIVE_MAX, log_standard_gamma, native, standard_gamma


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0, 1.7, 3.0, 100.0, 1e4])
def test_shared_concentration_passes_ks_against_scipy(alpha: float, dtype: torch.dtype) -> None:
    x = standard_gamma(torch.tensor(alpha, dtype=dtype), torch.Size([40000]))
    assert x.dtype == dtype and x.shape == (40000,)
    assert bool(torch.isfinite(x).all()) and bool((x > 0).all())
    # Randomised probability-integral transform: draws clamped at the smallest normal number
    # (1.3% of them for alpha = 0.05 in float32) stand for the mass below it, so they get a
    # uniform value below F(tiny). A fixed seed: a correct sampler fails this at the 1e-4 level only.
    tiny = torch.finfo(dtype).tiny
    values = x.double().numpy()
    u = stats.gamma(alpha).cdf(values)
    clamped = values <= tiny
    u[clamped] = np.random.default_rng(seeded(0)).uniform(0.0, stats.gamma(alpha).cdf(tiny), clamped.sum())
    assert stats.kstest(u, "uniform").pvalue > 1e-4


def test_per_element_concentrations_across_the_alpha_one_switch() -> None:
    # Mixed concentrations (boosted below 1, Marsaglia-Tsang above) in one call: the
    # probability-integral transform of every draw under its own concentration is uniform.
    alpha = torch.tensor([0.2, 0.9, 1.0, 2.5, 40.0], dtype=torch.float64).repeat(8000)
    x = standard_gamma(alpha)
    u = special.gammainc(alpha.numpy(), x.numpy())
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    for a in (0.2, 0.9, 1.0, 2.5, 40.0):
        sel = (alpha == a).numpy()
        assert stats.kstest(x.numpy()[sel], stats.gamma(a).cdf).pvalue > 1e-4


def test_broadcasting_shape_and_rejections_redrawn() -> None:
    # alpha = 1 rejects ~5% of first draws; every element must still come out accepted and
    # distributed as Gamma(1) = Exp(1) along both broadcast axes.
    alpha = torch.tensor([[1.0], [6.0]])
    x = standard_gamma(alpha, torch.Size([2, 30000]))
    assert x.shape == (2, 30000)
    assert stats.kstest(x[0].double().numpy(), stats.expon.cdf).pvalue > 1e-4
    assert stats.kstest(x[1].double().numpy(), stats.gamma(6.0).cdf).pvalue > 1e-4


def test_log_space_draws_match_gamma_quantiles_for_tiny_alpha() -> None:
    # y = log G(alpha + 1) + log(U) / alpha; at alpha = 1e-4 almost every x underflows, but
    # P(log X <= t) = P(alpha, e^t) is still checkable: binomial counts within 5 SE.
    alpha, n = 1e-4, 20000
    y = log_standard_gamma(torch.full((n,), alpha, dtype=torch.float64)).numpy()
    assert np.isfinite(y).all()
    for t in (-1e5, -1e4, -1e3, -10.0):
        p = np.exp(alpha * t - special.gammaln(alpha + 1)) if t < -700 else special.gammainc(alpha, np.exp(t))
        count = (y <= t).sum()
        assert abs(count - n * p) < 5 * np.sqrt(n * p * (1 - p)), (t, count, n * p)


def test_underflowing_float32_draws_are_clamped_not_zero() -> None:
    x = standard_gamma(torch.tensor(1e-3), torch.Size([5000]))
    assert bool((x >= torch.finfo(torch.float32).tiny).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("rate", "thresholds"), [(1e8, (1e-30, 1e-15, 1e-9)), (1e-8, (1e-35, 1e-20, 1e-5))])
def test_tiny_concentration_extreme_rate_keeps_every_representable_draw(
    rate: float, thresholds: tuple[float, ...], dtype: torch.dtype
) -> None:
    # Gamma(0.01, rate): z = G / rate. Dividing a G already clamped at the smallest normal
    # number gave exact zeros at rate 1e8 (869 of 2000 in float32) and a floor at 1e-30 for
    # rate 1e-8. P(z <= t) = P(0.01, t rate): binomial counts within 5 SE (two-sided
    # false-alarm rate 5.7e-7 per threshold).
    n, alpha = 4000, 0.01
    z = Gamma(torch.tensor(alpha, dtype=dtype), torch.tensor(rate, dtype=dtype)).sample((n,))
    assert bool((z > 0).all()) and bool(torch.isfinite(z).all())
    values = z.double().numpy()
    for t in thresholds:
        if t < torch.finfo(dtype).tiny:
            continue
        p = special.gammainc(alpha, t * rate)
        count = (values <= t).sum()
        assert abs(count - n * p) < 5 * np.sqrt(n * p * (1 - p)), (t, count, n * p)


def test_rejection_rounds_are_bounded_and_invalid_concentrations_give_nan() -> None:
    alpha = torch.tensor([float("nan"), float("inf"), -1.0, 0.0, 0.5, 2.0])
    for x in (standard_gamma(alpha, torch.Size([50, 6])), log_standard_gamma(alpha, torch.Size([50, 6]))):
        assert bool(torch.isnan(x[:, :4]).all()) and bool(torch.isfinite(x[:, 4:]).all())
    for bad in (float("nan"), float("inf"), -2.0):
        assert bool(torch.isnan(standard_gamma(torch.tensor(bad), torch.Size([7]))).all())


@pytest.mark.parametrize("checked", [False, True])
@pytest.mark.parametrize("alpha", [0.3, 1.0, 3.0, 100.0])
def test_small_calls_take_the_native_sampler_and_pass_ks(alpha: float, checked: bool) -> None:
    # calls of at most NATIVE_MAX samples draw with torch._standard_gamma (boosted below 1):
    # four calls of 10000, pooled; p > 1e-4: false-alarm rate 1e-4 per test
    a = torch.tensor(alpha, dtype=torch.float64)
    assert NATIVE_MAX >= 10000 and native(a, 10000) and not native(a, NATIVE_MAX + 1)
    x = torch.cat([standard_gamma(a, torch.Size([10000]), checked=checked) for _ in range(4)])
    assert bool((x > 0).all())
    assert stats.kstest(x.numpy(), stats.gamma(alpha).cdf).pvalue > 1e-4


def test_small_calls_give_nan_for_invalid_concentrations() -> None:
    alpha = torch.tensor([math.nan, -1.0, 0.0, math.inf, 2.0, 0.5])
    x = standard_gamma(alpha, torch.Size([50, 6]))
    assert bool(x[:, :4].isnan().all()) and bool(torch.isfinite(x[:, 4:]).all())
