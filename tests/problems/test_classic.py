"""The classic problems: closed-form gradients against scipy quadrature / enumeration, and the
estimators against them."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from reparam.diagnostics import gradient_stats
from reparam.estimators.registry import make_estimator
from reparam.problems import PROBLEMS, get_problem


def normal_expectation(f, mu: float, sigma: float) -> float:
    value, _ = integrate.quad(
        lambda x: f(x) * stats.norm.pdf(x, mu, sigma), -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12, limit=500
    )
    return value


def central_difference(g, x: float, h: float = 1e-4) -> float:
    """(g(x + h) - g(x - h)) / 2h: error O(h^2 g''') ~ 1e-8 here, far below the 1e-6 tolerance."""
    return (g(x + h) - g(x - h)) / (2 * h)


@pytest.mark.parametrize("mu, sigma, k", [(1.0, 1.0, 0.0), (-0.5, 2.0, 1.5)])
def test_normal_quadratic_exact_matches_quadrature(mu: float, sigma: float, k: float) -> None:
    p = get_problem("normal-quadratic", mu=mu, sigma=sigma, k=k)
    f = lambda x: (x - k) ** 2  # noqa: E731
    d_mu = central_difference(lambda m: normal_expectation(f, m, sigma), mu)
    d_sigma = central_difference(lambda s: normal_expectation(f, mu, s), sigma)
    assert float(p.exact[0]) == pytest.approx(d_mu, abs=1e-6)
    assert float(p.exact[1]) == pytest.approx(d_sigma, abs=1e-6)
    assert p.param_names == ["mu", "sigma"]


@pytest.mark.parametrize("mu, sigma, omega", [(1.0, 1.0, 5.0), (0.3, 0.4, 2.0)])
def test_normal_cos_exact_matches_quadrature(mu: float, sigma: float, omega: float) -> None:
    p = get_problem("normal-cos", mu=mu, sigma=sigma, omega=omega)
    f = lambda x: math.cos(omega * x)  # noqa: E731
    d_mu = central_difference(lambda m: normal_expectation(f, m, sigma), mu)
    d_sigma = central_difference(lambda s: normal_expectation(f, mu, s), sigma)
    assert float(p.exact[0]) == pytest.approx(d_mu, abs=1e-6)
    assert float(p.exact[1]) == pytest.approx(d_sigma, abs=1e-6)


@pytest.mark.parametrize("rate", [0.5, 1.0, 3.0])
def test_exponential_sin_exact_matches_quadrature(rate: float) -> None:
    p = get_problem("exponential-sin", rate=rate)

    def expectation(lam: float) -> float:
        value, _ = integrate.quad(lambda z: math.sin(z) * lam * math.exp(-lam * z), 0, np.inf, limit=500)
        return value

    assert expectation(rate) == pytest.approx(rate / (1 + rate**2), abs=1e-9)
    assert float(p.exact[0]) == pytest.approx(central_difference(expectation, rate), abs=1e-6)


def test_bernoulli_offset_exact_matches_enumeration() -> None:
    p = get_problem("bernoulli-offset", dims=3, logits=0.4, offset=7.0, targets=[0.1, 0.5, 0.8])
    t = np.array([0.1, 0.5, 0.8])

    def expectation(phi: np.ndarray) -> float:
        probs = 1 / (1 + np.exp(-phi))
        total = 0.0
        for b in itertools.product([0, 1], repeat=3):
            b = np.array(b)
            weight = np.prod(np.where(b == 1, probs, 1 - probs))
            total += weight * (((b - t) ** 2).sum() + 7.0)
        return total

    phi = np.full(3, 0.4)
    numeric = [
        central_difference(lambda x, i=i: expectation(np.where(np.arange(3) == i, x, phi)), 0.4)
        for i in range(3)
    ]
    assert np.allclose(p.exact[0].numpy(), numeric, atol=1e-8)
    assert p.exact[0][1] == 0.0  # target 0.5: both outcomes cost the same


@pytest.mark.parametrize("name", ["normal-quadratic", "normal-cos", "exponential-sin", "bernoulli-offset"])
def test_default_estimators_are_unbiased_on_each_problem(name: str) -> None:
    # Each default estimator's mean over 2000 estimates lies within 5 standard errors of the
    # closed form (the loop-only moving-average baseline gets 300 estimates to stay fast).
    problem = get_problem(name)
    assert name in PROBLEMS and problem.exact is not None
    for estimator_name in problem.default_estimators:
        estimator = make_estimator(estimator_name)
        n = 2 if estimator_name == "reinforce-loo" else 1
        repeats = 300 if estimator_name == "reinforce-ma" else 2000
        s = gradient_stats(
            problem.f,
            problem.q,
            problem.params,
            estimator,
            num_samples=n,
            repeats=repeats,
            exact=problem.exact,
        )
        for bias, stderr in zip(s.bias, s.stderr, strict=True):
            assert torch.all(bias.abs() <= 5 * stderr + 1e-12), (estimator_name, bias, stderr)


def test_offset_hurts_plain_reinforce_and_a_baseline_fixes_it() -> None:
    # Plain REINFORCE per coordinate: Var = E[f^2 (b_i - p_i)^2] - g_i^2 ~ offset^2 p (1 - p);
    # for offset 10, p = 1/2 that is about 25+ vs < 1 with a leave-one-out baseline.
    p = get_problem("bernoulli-offset", offset=10.0)
    plain = gradient_stats(p.f, p.q, p.params, make_estimator("reinforce"), repeats=2000)
    loo = gradient_stats(p.f, p.q, p.params, make_estimator("reinforce-loo"), num_samples=2, repeats=2000)
    assert float(plain.variance[0].min()) > 20
    assert float(loo.variance[0].max()) < 1
    with pytest.raises(TypeError, match="rsample"):
        make_estimator("pathwise")(p.f, p.q, 1)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="sigma"):
        get_problem("normal-quadratic", sigma=0.0)
    with pytest.raises(ValueError, match="rate"):
        get_problem("exponential-sin", rate=-1.0)
    with pytest.raises(ValueError, match="dims"):
        get_problem("bernoulli-offset", dims=0)
    with pytest.raises(ValueError, match="targets"):
        get_problem("bernoulli-offset", dims=3, targets=[0.1, 0.2])
    with pytest.raises(ValueError, match="mu"):
        get_problem("normal-cos", mu=float("nan"))
