"""The gamma sample derivative against 40-digit mpmath: every evaluation (series, Temme's expansion,
differences of gammainc) and the borders between them, for shared and per-element concentrations."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from seeds import seeded

from reparam.distributions._gamma_grad import standard_gamma_log_grad
from reparam.distributions._gamma_sampler import log_standard_gamma

ALPHAS = [1e-4, 1e-2, 0.5, 1.0, 3.0, 7.99, 8.0, 20.0, 20.00001, 150.0, 200.0, 1e3, 1e4]


def mp_log_grad(y: float, alpha: float) -> float:
    """``d log x / d alpha = -(dP/dalpha) / (x p(x))`` with ``P`` and its derivative at 40 digits."""
    with mpmath.workdps(40):
        x, a = mpmath.e ** mpmath.mpf(y), mpmath.mpf(alpha)
        d_p = mpmath.diff(lambda s: mpmath.gammainc(s, 0, x, regularized=True), a)
        return float(-d_p / mpmath.e ** (a * mpmath.mpf(y) - x - mpmath.loggamma(a)))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_log_grad_matches_mpmath(alpha: float) -> None:
    torch.manual_seed(seeded(3))
    a = torch.full((12,), alpha, dtype=torch.float64)
    y = log_standard_gamma(a)
    got = standard_gamma_log_grad(y, a).numpy()
    want = np.array([mp_log_grad(float(v), alpha) for v in y])
    np.testing.assert_allclose(got, want, rtol=1e-8)


@pytest.mark.parametrize("alpha", [0.3, 2.5, 7.5, 10.0, 50.0, 101.0])
def test_log_grad_matches_mpmath_on_a_grid_through_the_bulk_and_tail(alpha: float) -> None:
    # Below 8 the series takes every element with the terms that suffice up to
    # alpha + 1.5 sqrt(alpha) + 1.5 and then the elements above again with more terms; above 8
    # Temme's expansion: a grid across the whole body, shared and per-element alpha, at 1e-8.
    x = np.linspace(max(0.05, alpha - 4.0 * np.sqrt(alpha)), alpha + 8.0 * np.sqrt(alpha) + 4.0, 31)
    y = torch.log(torch.tensor(x, dtype=torch.float64))
    want = np.array([mp_log_grad(float(v), alpha) for v in y])
    shared = standard_gamma_log_grad(y, torch.tensor(alpha, dtype=torch.float64)).numpy()
    per_element = standard_gamma_log_grad(y, torch.full_like(y, alpha)).numpy()
    np.testing.assert_allclose(shared, want, rtol=1e-8)
    np.testing.assert_allclose(per_element, want, rtol=1e-8)


@pytest.mark.parametrize("alpha", [0.5, 3.0, 7.5, 9.0])
def test_far_upper_tail_is_recomputed_by_differences(alpha: float) -> None:
    # Q = 1e-5 ... 1e-16: below 8 the series' condition number passes 1e6 there (its rounding
    # error would reach 1e-5), above 8 eta passes 2.5; both go to differences of gammaincc.
    from scipy import special

    x = special.gammainccinv(alpha, np.array([1e-5, 1e-7, 1e-9, 1e-11, 1e-16]))
    y = torch.log(torch.tensor(x, dtype=torch.float64))
    want = np.array([mp_log_grad(float(v), alpha) for v in y])
    for a in (torch.tensor(alpha, dtype=torch.float64), torch.full_like(y, alpha)):
        np.testing.assert_allclose(standard_gamma_log_grad(y, a).numpy(), want, rtol=1e-8)


def test_mixed_per_element_concentrations_use_every_evaluation_at_once() -> None:
    # One call whose elements need the series (alpha < 8), Temme (|eta| <= 2.5) and differences
    # (eta > 2.5), each compared with mpmath.
    from scipy import special

    alpha = np.array([0.02, 0.7, 4.0, 7.99, 8.0, 30.0, 500.0, 8.0, 8.5])
    q = np.array([0.5, 0.9, 1e-3, 0.2, 0.7, 0.01, 0.4, 1e-15, 1 - 1e-9])
    x = special.gammainccinv(alpha, q)
    y = torch.log(torch.tensor(x, dtype=torch.float64))
    got = standard_gamma_log_grad(y, torch.tensor(alpha)).numpy()
    want = np.array([mp_log_grad(float(v), a) for v, a in zip(y, alpha, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-8)


@pytest.mark.parametrize("alpha", [0.7, 3.0, 7.5, 12.0, 300.0])
def test_large_calls_agree_with_small_calls(alpha: float) -> None:
    # Above 4096 elements the series' bulk and Temme's polynomial switch from one matrix
    # product to in-place Horner loops (and the series splits bulk and tail); the small calls
    # are the ones checked against mpmath above. Shared and per-element alpha.
    from reparam.distributions._gamma_sampler import log_standard_gamma

    a = torch.tensor(alpha, dtype=torch.float64)
    y = log_standard_gamma(a, torch.Size([20000]))
    shared_parts = torch.cat([standard_gamma_log_grad(chunk, a) for chunk in y.split(1000)])
    per_element_parts = torch.cat([standard_gamma_log_grad(c, a.expand_as(c)) for c in y.split(1000)])
    # Each path is held to 1e-8 against mpmath (the tests above), so two paths may differ by up
    # to ~2e-8; they usually agree to 1e-12, but a rare sample near a regime border (one in
    # 20,000 at some seeds) differs by ~7e-10.
    for whole in (standard_gamma_log_grad(y, a), standard_gamma_log_grad(y, a.expand_as(y))):
        np.testing.assert_allclose(whole.numpy(), shared_parts.numpy(), rtol=2e-8)
        np.testing.assert_allclose(whole.numpy(), per_element_parts.numpy(), rtol=2e-8)
