"""Pathwise estimator: unbiased against closed forms and quadrature; known one-sample variances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from seeds import seeded
from torch.distributions import Bernoulli, Exponential, Normal

import reparam as rp


def normal(loc, scale):
    return Normal(loc, scale)


# Closed forms under N(mu, sigma^2):
#   E[(z - k)^2] = (mu - k)^2 + sigma^2       -> d/dmu = 2(mu - k),  d/dsigma = 2 sigma
#   E[cos(w z)]  = cos(w mu) exp(-w^2 sigma^2 / 2)
CASES = [
    (lambda z: (z - 2.0) ** 2, 0.5, 1.5, (2 * (0.5 - 2.0), 2 * 1.5)),
    (lambda z: (z - 2.0) ** 2, -1.0, 0.2, (2 * (-1.0 - 2.0), 2 * 0.2)),
    (
        lambda z: torch.cos(3.0 * z),
        0.3,
        0.7,
        (
            -3.0 * math.sin(0.9) * math.exp(-4.5 * 0.49),
            -9.0 * 0.7 * math.cos(0.9) * math.exp(-4.5 * 0.49),
        ),
    ),
]


@pytest.mark.parametrize(("f", "mu", "sigma", "exact"), CASES)
def test_unbiased_normal_closed_forms(f, mu, sigma, exact, estimates, unbiased) -> None:
    grads = estimates(normal, f, rp.Pathwise(), (mu, sigma), num_samples=2, repeats=4000)
    for grad, value in zip(grads, exact, strict=True):
        unbiased(grad, value)


def test_unbiased_against_quadrature_softplus(estimates, unbiased) -> None:
    # No closed form: d/dtheta E[softplus(z)] = int softplus(z) d/dtheta N(z; mu, sigma) dz.
    mu, sigma = 0.4, 1.3
    softplus = lambda z: np.logaddexp(0.0, z)  # noqa: E731
    dmu = integrate.quad(
        lambda z: softplus(z) * (z - mu) / sigma**2 * stats.norm.pdf(z, mu, sigma), -np.inf, np.inf
    )[0]
    dsigma = integrate.quad(
        lambda z: softplus(z) * ((z - mu) ** 2 / sigma**3 - 1 / sigma) * stats.norm.pdf(z, mu, sigma),
        -np.inf,
        np.inf,
    )[0]
    grads = estimates(normal, torch.nn.functional.softplus, rp.Pathwise(), (mu, sigma), repeats=4000)
    unbiased(grads[0], dmu)
    unbiased(grads[1], dsigma)


def test_exponential_sin_closed_form(estimates, unbiased) -> None:
    # z = -log(u)/lambda; E[sin z] = lambda / (1 + lambda^2), derivative (1 - lambda^2)/(1 + lambda^2)^2.
    lam = 0.8
    (grad,) = estimates(Exponential, torch.sin, rp.Pathwise(), (lam,), repeats=4000)
    unbiased(grad, (1 - lam**2) / (1 + lam**2) ** 2)


def test_one_sample_variance_normal_square(estimates) -> None:
    # x ~ N(1, 1), f = x^2: pathwise d/dmu = 2x, variance 4 Var(x) = 4. The sample variance of
    # R draws has standard error sqrt((mu4 - sigma^4)/R) with mu4 = E[(2x - 2)^4] = 16*3 = 48:
    # sqrt(32/20000) = 0.04, so 5 standard errors is 0.2 (5%).
    (grad, _) = estimates(normal, lambda z: z**2, rp.Pathwise(), (1.0, 1.0), repeats=20000)
    assert abs(grad.var().item() - 4.0) < 0.2


def test_mean_over_samples_divides_variance(estimates) -> None:
    # With N samples the estimate is a mean of N i.i.d. per-sample gradients: variance 4 / N.
    (grad, _) = estimates(normal, lambda z: z**2, rp.Pathwise(), (1.0, 1.0), num_samples=8, repeats=20000)
    assert abs(grad.var().item() - 0.5) < 0.025


def test_value_is_monte_carlo_mean() -> None:
    q = Normal(torch.tensor(0.0), torch.tensor(1.0))
    torch.manual_seed(seeded(3))
    value = rp.expect(lambda z: z**2, q, rp.Pathwise(), num_samples=5)
    torch.manual_seed(seeded(3))
    z = q.rsample((5,))
    assert torch.allclose(value, (z**2).mean())


def test_refuses_non_reparameterizable_q_and_suggests_fix() -> None:
    q = Bernoulli(probs=torch.tensor(0.3))
    with pytest.raises(TypeError, match=r"ScoreFunction\(\).*Implicit"):
        rp.expect(lambda z: z, q, rp.Pathwise())
