"""The torch pendulum against gymnasium's Pendulum-v1 (an independent implementation)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from seeds import seeded

from reparam.models.policy.pendulum import Pendulum, angle_normalize
from reparam.models.policy.task import DifferentiableTask


def test_step_and_cost_match_gymnasium() -> None:
    env = gym.make("Pendulum-v1").unwrapped
    env.reset(seed=seeded(0))
    task = Pendulum(dtype=torch.float64)
    rng = np.random.default_rng(seeded(0))
    for _ in range(50):
        state = np.array([rng.uniform(-4, 4), rng.uniform(-9, 9)])
        action = np.array([rng.uniform(-3, 3)])  # beyond the torque limit sometimes
        env.state = state.copy()
        obs, reward, *_ = env.step(action)
        x = torch.tensor(state).unsqueeze(0)
        u = torch.tensor(action).unsqueeze(0)
        nxt = task.step(x, u)[0]
        assert float(task.cost(x, u)[0]) == pytest.approx(-float(reward), rel=1e-6, abs=1e-9)
        np.testing.assert_allclose(nxt.numpy(), env.state, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(task.observe(nxt).numpy()[:2], obs[:2], rtol=1e-5, atol=1e-6)


def test_protocol_initial_states_and_limits() -> None:
    task = Pendulum(horizon=7)
    assert isinstance(task, DifferentiableTask)
    x = task.initial_state(1000, torch.Generator().manual_seed(seeded(0)))
    assert x.shape == (1000, 2)
    assert float(x[:, 0].abs().max()) <= math.pi and float(x[:, 1].abs().max()) <= 1.0
    # The torque limit is non-smooth: no gradient through a saturated action.
    u = torch.tensor([[5.0]], requires_grad=True)
    task.step(torch.zeros(1, 2), u)[0, 1].backward()
    assert float(u.grad) == 0.0
    assert float(angle_normalize(torch.tensor(3 * math.pi / 2))) == pytest.approx(-math.pi / 2)
    with pytest.raises(ValueError, match="horizon"):
        Pendulum(horizon=0)
    assert task.with_horizon(3).horizon == 3
