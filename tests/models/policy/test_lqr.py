"""LQR: the closed-form expected cost and the known optimum."""

from __future__ import annotations

import pytest
import torch
from seeds import seeded

from reparam.models.policy.lqr import LQR, expected_cost, spectral_radius
from reparam.models.policy.trajectory import episode_cost


def _monte_carlo_cost(lqr: LQR, K: torch.Tensor, sigma: float, n: int) -> tuple[float, float]:
    """Mean and standard error of the episode cost of u = -K x + sigma eps over n episodes."""
    x = lqr.initial_state(n)
    actions = []
    state = x
    for _ in range(lqr.horizon):
        u = -state @ K.T + sigma * torch.randn(n, lqr.action_dim, dtype=torch.float64)
        actions.append(u)
        state = lqr.step(state, u)
    costs = episode_cost(lqr, x, torch.stack(actions, dim=-2))
    return float(costs.mean()), float(costs.std() / n**0.5)


@pytest.mark.parametrize(("gain", "sigma"), [((1.0, 1.5), 0.5), ((3.0, 2.0), 0.0), ((0.2, 0.1), 1.0)])
def test_expected_cost_matches_monte_carlo(gain: tuple[float, float], sigma: float) -> None:
    # The covariance recursion Sigma' = (A-BK) Sigma (A-BK)' + sigma^2 BB' is exact for linear
    # Gaussian systems, so the Monte Carlo mean must lie within 5 standard errors.
    lqr = LQR(horizon=30, dtype=torch.float64)
    K = torch.tensor([gain], dtype=torch.float64)
    mean, se = _monte_carlo_cost(lqr, K, sigma, 8000)
    exact = float(expected_cost(lqr, K, sigma))
    assert abs(mean - exact) < 5 * se, (mean, exact, se)


def test_optimum_is_riccati_gain_and_cost() -> None:
    lqr = LQR(horizon=40)
    K = lqr.K_star.clone().requires_grad_(True)
    sigma = 0.3
    cost = expected_cost(lqr, K, sigma)
    # J(K*, sigma) = tr(P Sigma0) + T sigma^2 (tr R + tr B'PB): the closed form of the optimum.
    assert float(cost.detach()) == pytest.approx(lqr.optimal_cost(sigma), rel=1e-10)
    # K* is a stationary point of J(., sigma) and every perturbation costs more.
    (grad,) = torch.autograd.grad(cost, K)
    assert float(grad.abs().max()) < 1e-8
    generator = torch.Generator().manual_seed(seeded(0))
    for _ in range(10):
        delta = 0.05 * torch.randn(K.shape, generator=generator, dtype=torch.float64)
        assert float(expected_cost(lqr, lqr.K_star + delta, sigma)) > lqr.optimal_cost(sigma)
    assert spectral_radius(lqr.A - lqr.B @ lqr.K_star) < 1


def test_bad_shapes_are_named() -> None:
    with pytest.raises(ValueError, match="A must be square"):
        LQR(A=torch.eye(3))
    with pytest.raises(ValueError, match="horizon"):
        LQR(horizon=0)
