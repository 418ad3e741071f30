"""Problems on the new distributions: exact gradients against scipy quadrature (finite
differences of the expectation), and the pathwise estimator unbiased against them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

import reparam as rp
from reparam.problems import PROBLEMS, get_problem

NAMES = ["vonmises-cos", "gamma-log", "truncated-normal-square", "beta-square", "mixture-square"]


def central(g, x: float, h: float) -> float:
    """(g(x+h) - g(x-h)) / 2h; error O(h^2) ~ 1e-8 for the steps below, far under the 1e-5 tolerance."""
    return (g(x + h) - g(x - h)) / (2 * h)


def quad(f, lo: float, hi: float, points=None) -> float:
    return integrate.quad(f, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=400, points=points)[0]


def test_all_registered() -> None:
    assert set(NAMES) <= set(PROBLEMS)


def test_vonmises_exact_against_quadrature() -> None:
    mu, kappa = 0.5, 2.0
    problem = get_problem("vonmises-cos", mu=mu, kappa=kappa)

    def expectation(m: float, k: float) -> float:
        pdf = lambda z: math.exp(k * math.cos(z - m)) / (2 * math.pi * special.i0(k))  # noqa: E731
        return quad(lambda z: math.cos(z) * pdf(z), -math.pi, math.pi)

    want = (
        central(lambda m: expectation(m, kappa), mu, 1e-4),
        central(lambda k: expectation(mu, k), kappa, 1e-4),
    )
    np.testing.assert_allclose([float(g) for g in problem.exact], want, rtol=1e-6)


def test_gamma_log_exact_against_quadrature() -> None:
    alpha, beta = 0.5, 2.0
    problem = get_problem("gamma-log", alpha=alpha, beta=beta)

    def expectation(a: float, b: float) -> float:
        return stats.gamma(a, scale=1 / b).expect(np.log, epsabs=1e-13, epsrel=1e-12, limit=400)

    want = (
        central(lambda a: expectation(a, beta), alpha, 1e-4),
        central(lambda b: expectation(alpha, b), beta, 1e-4),
    )
    np.testing.assert_allclose([float(g) for g in problem.exact], want, rtol=1e-5)


def test_truncated_normal_exact_against_quadrature() -> None:
    problem = get_problem("truncated-normal-square")

    def expectation(m: float, s: float) -> float:
        ref = stats.truncnorm((6.0 - m) / s, (8.0 - m) / s, loc=m, scale=s)
        return quad(lambda z: z * z * ref.pdf(z), 6.0, 8.0, points=[6.0, 6.2])

    want = (
        central(lambda m: expectation(m, 1.0), 0.0, 1e-4),
        central(lambda s: expectation(0.0, s), 1.0, 1e-4),
    )
    np.testing.assert_allclose([float(g) for g in problem.exact], want, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_pathwise_unbiased_against_exact(name: str) -> None:
    # gradient_stats draws `repeats` independent one-sample estimates; the mean of each
    # coordinate must be within 5 standard errors (sqrt(variance / repeats)) of the exact value.
    # 1000 repeats: beta and mixture parameters live off arg_constraints' tensors, so
    # gradient_stats cannot batch them and draws estimates one by one.
    problem = get_problem(name)
    repeats = 1000
    stats_ = rp.gradient_stats(problem.f, problem.q, problem.params, rp.Pathwise(), repeats=repeats)
    for mean, var, exact in zip(stats_.mean, stats_.variance, problem.exact, strict=True):
        se = torch.sqrt(var / repeats)
        assert bool((torch.abs(mean - exact) < 5 * se + 1e-9).all()), (name, mean, exact, se)


def test_bad_options_name_the_argument() -> None:
    with pytest.raises(ValueError, match="kappa must be a positive"):
        get_problem("vonmises-cos", kappa=-1.0)
    with pytest.raises(ValueError, match="low must be < high"):
        get_problem("truncated-normal-square", low=2.0, high=1.0)
