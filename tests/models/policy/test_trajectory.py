"""The action-sequence distribution of a Gaussian policy: shapes, density, gradients."""

from __future__ import annotations

import pytest
import torch
from seeds import seeded

from reparam.models.policy import LQR, TrajectoryDistribution, episode_cost, linear_gaussian_policy


def _setup() -> tuple[LQR, torch.nn.Module, torch.Tensor]:
    task = LQR(horizon=6, dtype=torch.float64)
    policy = linear_gaussian_policy(2, 1, 0.4, gain=torch.tensor([[0.5, 1.0]])).double()
    return task, policy, task.initial_state(3)


def test_shapes_and_no_grad_sample() -> None:
    task, policy, x0 = _setup()
    q = TrajectoryDistribution(task, policy, x0)
    assert q.batch_shape == (3,) and q.event_shape == (6, 1)
    z = q.sample((5,))
    assert z.shape == (5, 3, 6, 1) and not z.requires_grad
    assert q.rsample((2,)).requires_grad
    assert q.log_prob(z).shape == (5, 3)
    assert q.step_log_probs(z).shape == (5, 3, 6)
    assert episode_cost(task, x0, z).shape == (5, 3)
    with pytest.raises(ValueError, match="initial_state"):
        TrajectoryDistribution(task, policy, torch.zeros(3, 5))


def test_log_prob_is_the_sum_of_policy_densities_along_the_replayed_states() -> None:
    task, policy, x0 = _setup()
    q = TrajectoryDistribution(task, policy, x0)
    u = torch.randn(4, 3, 6, 1, dtype=torch.float64)
    K, sigma = policy.mean.K.detach().double(), float(policy.log_std.detach().exp())
    x, expected = x0.expand(4, 3, 2), torch.zeros(4, 3, dtype=torch.float64)
    for t in range(6):
        mean = -(x @ K.T)
        expected += torch.distributions.Normal(mean, sigma).log_prob(u[..., t, :]).sum(-1)
        x = task.step(x, u[..., t, :])
    torch.testing.assert_close(q.log_prob(u), expected)


def test_rsample_gradient_is_back_propagation_through_time() -> None:
    # With the noise fixed, the pathwise gradient of the episode cost must equal the gradient
    # of an explicit rollout u_t = -K x_t + sigma eps_t (checked against finite differences).
    task, policy, x0 = _setup()
    torch.manual_seed(seeded(0))
    q = TrajectoryDistribution(task, policy, x0)
    cost = episode_cost(task, x0, q.rsample()).sum()
    (grad,) = torch.autograd.grad(cost, policy.mean.K)
    torch.manual_seed(seeded(0))
    eps = [
        torch.distributions.Normal(torch.zeros(3, 1, dtype=torch.float64), 1.0).rsample() for _ in range(6)
    ]

    def rollout(K: torch.Tensor) -> torch.Tensor:
        x, total = x0, torch.zeros(3, dtype=torch.float64)
        for t in range(6):
            u = -(x @ K.T) + 0.4 * eps[t]
            total = total + task.cost(x, u)
            x = task.step(x, u)
        return (total + task.terminal_cost(x)).sum()

    K = policy.mean.K.detach().double()
    torch.testing.assert_close(rollout(K), cost.detach())
    h = 1e-6
    numeric = torch.stack(
        [
            (rollout(K + h * e) - rollout(K - h * e)) / (2 * h)
            for e in torch.eye(2, dtype=torch.float64).unsqueeze(1)
        ]
    )
    torch.testing.assert_close(grad.flatten(), numeric, rtol=1e-5, atol=1e-6)
