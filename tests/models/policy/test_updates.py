"""Training on LQR reaches the known optimal cost (Riccati) with every estimator."""

from __future__ import annotations

import math

import pytest
import torch
from seeds import seeded

from reparam.baselines import LeaveOneOut
from reparam.models.policy import LQR, differentiable_update, expected_cost, linear_gaussian_policy

SIGMA, HORIZON, STEPS = 0.3, 20, 150
# Stated tolerance: the exact expected cost J(K, sigma) of the trained gain is within 2% of the
# optimum J*(sigma) = tr(P Sigma0) + T sigma^2 (tr R + tr B'PB) (deterministic: J*(0) = tr(P Sigma0)).
TOLERANCE = 0.02


@pytest.mark.parametrize("method", ["pathwise", "reinforce", "reinforce-rtg", "deterministic"])
def test_training_reaches_the_optimal_cost(method: str) -> None:
    torch.manual_seed(seeded(0))
    task = LQR(horizon=HORIZON)
    policy = linear_gaussian_policy(2, 1, SIGMA, learn_std=False)
    optimizer = torch.optim.Adam(policy.parameters(), lr=0.5)
    generator = torch.Generator().manual_seed(seeded(0))
    start = float(expected_cost(task, policy.mean.K.detach().double(), SIGMA))
    for step in range(STEPS):
        for group in optimizer.param_groups:  # cosine decay from 0.5 to 0.025
            group["lr"] = 0.5 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / STEPS)))
        baseline = LeaveOneOut() if method.startswith("reinforce") else None
        differentiable_update(task, policy, optimizer, method, 64, 4, baseline, generator=generator)
    sigma = 0.0 if method == "deterministic" else SIGMA
    cost = float(expected_cost(task, policy.mean.K.detach().double(), sigma))
    optimum = task.optimal_cost(sigma)
    assert cost / optimum - 1 < TOLERANCE, (method, cost, optimum, policy.mean.K)
    assert start / task.optimal_cost(SIGMA) - 1 > 0.5  # it had somewhere to go


def test_unknown_method_is_named() -> None:
    task = LQR(horizon=3)
    policy = linear_gaussian_policy(2, 1, SIGMA)
    with pytest.raises(ValueError, match="method"):
        differentiable_update(task, policy, torch.optim.SGD(policy.parameters(), lr=0.1), "sgd", 2, 2)
