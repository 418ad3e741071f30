"""Priors: analytic KL against torch.distributions, Monte Carlo KL against quadrature."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl
from torch.func import vmap

from reparam.nn import NormalPrior, ScaleMixturePrior


def test_normal_prior_kl_matches_closed_form() -> None:
    loc = torch.randn(4, 3, dtype=torch.float64)
    scale = torch.rand(4, 3, dtype=torch.float64) + 0.1
    prior = NormalPrior(0.3, 2.0).double()
    expected = torch_kl(Normal(loc, scale), Normal(0.3, 2.0)).sum()
    torch.testing.assert_close(prior.kl(loc, scale), expected)


def test_normal_prior_log_prob() -> None:
    w = torch.linspace(-3, 3, 7, dtype=torch.float64)
    prior = NormalPrior(-0.5, 0.7).double()
    torch.testing.assert_close(prior.log_prob(w), Normal(-0.5, 0.7).log_prob(w))


def test_learnable_prior_is_fitted_by_the_kl() -> None:
    # d KL / d log s = 1 - (sigma^2 + (mu - m)^2) / s^2 summed: zero at s^2 = mean(sigma^2 + mu^2).
    prior = NormalPrior(0.0, 1.0, learnable=True).double()
    assert {n for n, _ in prior.named_parameters()} == {"loc", "log_scale"}
    loc = torch.full((10,), 0.0, dtype=torch.float64)
    scale = torch.full((10,), 3.0, dtype=torch.float64)
    optimizer = torch.optim.LBFGS(prior.parameters(), max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        kl = prior.kl(loc, scale)
        kl.backward()
        return kl

    optimizer.step(closure)
    assert math.isclose(prior.scale.item(), 3.0, rel_tol=1e-5)


def test_fixed_prior_has_no_parameters_but_is_saved() -> None:
    prior = NormalPrior(0.0, 0.5)
    assert list(prior.parameters()) == []
    assert set(prior.state_dict()) == {"loc", "log_scale"}


def _mixture_kl_by_quadrature(mu: float, sigma: float, pi: float, s1: float, s2: float) -> float:
    def integrand(w: float) -> float:
        log_q = stats.norm.logpdf(w, mu, sigma)
        log_p = np.logaddexp(
            np.log(pi) + stats.norm.logpdf(w, 0, s1), np.log1p(-pi) + stats.norm.logpdf(w, 0, s2)
        )
        return math.exp(log_q) * (log_q - log_p)

    value, _ = integrate.quad(integrand, mu - 12 * sigma, mu + 12 * sigma, limit=200, points=[0.0])
    return value


def test_scale_mixture_kl_unbiased_against_quadrature() -> None:
    # The MC KL is unbiased; over R independent estimates (num_samples=1 each) the mean must be
    # within 5 standard errors (sample std / sqrt(R)) of the quadrature value.
    pi, s1, s2 = 0.3, 1.0, 0.05
    prior = ScaleMixturePrior(pi, s1, s2).double()
    loc = torch.tensor([0.0, 0.4, -1.2], dtype=torch.float64)
    scale = torch.tensor([0.02, 0.3, 0.8], dtype=torch.float64)
    exact = sum(
        _mixture_kl_by_quadrature(float(m), float(s), pi, s1, s2) for m, s in zip(loc, scale, strict=True)
    )
    draws = vmap(lambda _: prior.kl(loc, scale), randomness="different")(torch.arange(20000))
    assert abs(float(draws.mean()) - exact) < 5 * float(draws.std()) / math.sqrt(len(draws))


def test_scale_mixture_log_prob_normalised() -> None:
    prior = ScaleMixturePrior(0.25, 2.0, 0.1).double()
    total, _ = integrate.quad(
        lambda w: math.exp(float(prior.log_prob(torch.tensor(w)))), -40, 40, points=[0.0]
    )
    assert math.isclose(total, 1.0, rel_tol=1e-6)


def test_scale_mixture_kl_gradient_flows_to_posterior() -> None:
    loc = torch.zeros(5, requires_grad=True)
    scale = torch.full((5,), 0.1, requires_grad=True)
    ScaleMixturePrior().kl(loc, scale).backward()
    assert loc.grad is not None and scale.grad is not None
    assert torch.isfinite(scale.grad).all()


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: NormalPrior(0.0, 0.0), "scale"),
        (lambda: NormalPrior(float("nan"), 1.0), "loc"),
        (lambda: ScaleMixturePrior(1.5), "mixture_weight"),
        (lambda: ScaleMixturePrior(0.5, -1.0), "scale1"),
        (lambda: ScaleMixturePrior(0.5, 1.0, 0.1, num_samples=0), "num_samples"),
    ],
)
def test_bad_prior_arguments(factory: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()
