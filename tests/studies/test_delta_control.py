"""DeltaControlled: the delta-method control variate around any estimator.

For a quadratic f the Taylor expansion is f itself, so f - h = 0 and the controlled pathwise
gradient is exact with zero variance. For a non-quadratic f (sum exp(c z)) the controlled
estimators must stay unbiased: exact gradient in closed form (E = exp(c mu + c^2 sigma^2 / 2)),
|mean - exact| < 5 standard errors over independent repeats.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal

import reparam as rp
from reparam.studies.delta_control import DeltaControlled, taylor_expansion


def test_quadratic_is_exact_with_zero_variance() -> None:
    a = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    mu = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)

    def f(z: torch.Tensor) -> torch.Tensor:
        return ((z @ a) * z).sum(-1) + z.sum(-1)

    q = Independent(Normal(mu, sigma), 1)
    h, expected = taylor_expansion(f, q)
    z = torch.randn(4, 2, dtype=torch.float64)
    assert torch.allclose(h(z), f(z))
    # E[z^T A z + 1^T z] = mu^T A mu + tr(A diag(sigma^2)) + 1^T mu
    exact = mu @ a @ mu + (torch.diagonal(a) * sigma**2).sum() + mu.sum()
    assert torch.allclose(expected, exact)
    grads = []
    for _ in range(3):
        value = rp.expect(f, Independent(Normal(mu, sigma), 1), DeltaControlled(rp.Pathwise()), 4)
        grads.append(torch.cat(torch.autograd.grad(value, [mu, sigma])))
    exact_grad = torch.cat(torch.autograd.grad(exact, [mu, sigma]))
    for g in grads:
        assert torch.allclose(g, exact_grad)


@pytest.mark.parametrize("base", [rp.Pathwise(), rp.MeasureValued()], ids=["pathwise", "measure-valued"])
def test_controlled_estimators_unbiased(base: object) -> None:
    c = 0.6
    mu = torch.tensor([0.2, -0.4, 0.5], dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([0.7, 1.1, 0.4], dtype=torch.float64, requires_grad=True)
    e = torch.exp(c * mu + 0.5 * c**2 * sigma**2).detach()
    exact = torch.cat([c * e, c**2 * sigma.detach() * e])
    estimator = DeltaControlled(base)
    grads = []
    for _ in range(300):
        q = Independent(Normal(mu, sigma), 1)
        value = rp.expect(lambda z: torch.exp(c * z).sum(-1), q, estimator, 8)
        grads.append(torch.cat(torch.autograd.grad(value, [mu, sigma])))
    grads = torch.stack(grads)
    z = (grads.mean(0) - exact).abs() / (grads.std(0) / math.sqrt(len(grads)))
    assert bool((z < 5).all()), z


def test_evaluations_and_errors() -> None:
    q = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    assert rp.evaluations(DeltaControlled(rp.Pathwise()), q, 10) == 11
    with pytest.raises(ValueError, match="one cost per sample"):
        batch_q = Normal(torch.zeros(3), torch.ones(3))
        rp.expect(lambda z: z**2, batch_q, DeltaControlled(rp.Pathwise()), 4)
