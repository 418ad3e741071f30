"""Batches of CartPole episodes from gymnasium's vectorised environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from reparam._optional import require

MAX_STEPS = 500  # CartPole-v1 truncates episodes at 500 steps; "solved" is an average >= 475


def make_cartpole(num_envs: int) -> Any:
    """``num_envs`` CartPole-v1 environments stepped together in numpy (gymnasium's
    ``CartPoleVectorEnv``); needs the ``rl`` extra (``pip install reparam[rl]``)."""
    gym = require("gymnasium", extra="rl", feature="CartPole")
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
    return gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="vector_entry_point")


@dataclass
class EpisodeBatch:
    """One episode per environment, padded to the longest: ``obs`` ``(N, T, 4)``, ``actions``
    ``(N, T)``, ``rewards`` ``(N, T)``, ``mask`` ``(N, T)`` (``True`` inside an episode)."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor

    @property
    def lengths(self) -> Tensor:
        return self.mask.sum(-1)

    @property
    def env_steps(self) -> int:
        """Transitions used (sum of episode lengths)."""
        return int(self.mask.sum())


def collect_episodes(
    env: Any, policy: nn.Module, seed: int | None = None, greedy: bool = False
) -> EpisodeBatch:
    """Run one episode in each of ``env.num_envs`` environments with ``policy`` (which maps
    observations to a ``Categorical``), without gradient. Environments whose episode has
    ended keep stepping (the vector env auto-resets them) until all are done; those
    transitions are discarded and not counted."""
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    alive = np.ones(n, dtype=bool)
    observations, actions, rewards, masks = [], [], [], []
    with torch.no_grad():
        for _ in range(MAX_STEPS):
            o = torch.as_tensor(obs, dtype=torch.float32)
            dist = policy(o)
            a = dist.probs.argmax(-1) if greedy else dist.sample()
            observations.append(o)
            actions.append(a)
            masks.append(torch.as_tensor(alive.copy()))
            obs, reward, terminated, truncated, _ = env.step(a.numpy())
            rewards.append(torch.as_tensor(reward, dtype=torch.float32) * torch.as_tensor(alive))
            alive &= ~(terminated | truncated)
            if not alive.any():
                break
    return EpisodeBatch(
        torch.stack(observations, 1), torch.stack(actions, 1), torch.stack(rewards, 1), torch.stack(masks, 1)
    )


def evaluate_policy(
    policy: nn.Module, episodes: int = 100, seed: int = 12345, greedy: bool = False
) -> np.ndarray:
    """Returns of ``episodes`` fresh CartPole-v1 episodes (stochastic policy unless ``greedy``)."""
    env = make_cartpole(episodes)
    try:
        batch = collect_episodes(env, policy, seed=seed, greedy=greedy)
    finally:
        env.close()
    return batch.rewards.sum(-1).numpy()
