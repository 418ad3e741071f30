"""One optimisation step of each policy-gradient method (used by ``reparam train policy``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from reparam.baselines.base import Baseline
from reparam.estimators.pathwise import Pathwise
from reparam.estimators.score_function import ScoreFunction
from reparam.models.policy.cartpole import MAX_STEPS, collect_episodes
from reparam.models.policy.gaussian_policy import GaussianPolicy
from reparam.models.policy.objectives import deterministic_objective, policy_objective, reward_to_go_objective
from reparam.models.policy.reinforce import reinforce_surrogate, reward_to_go
from reparam.models.policy.task import DifferentiableTask

METHODS = ("pathwise", "reinforce", "reinforce-rtg", "deterministic")


@dataclass(frozen=True)
class UpdateResult:
    """What one update reports: the mean episode cost (or return) of the batch used, the
    episode returns (CartPole), and the environment steps consumed."""

    cost: float
    episode_returns: tuple[float, ...] = ()
    env_steps: int = 0


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: Any, max_norm: float | None) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_norm)
    optimizer.step()


def differentiable_update(
    task: DifferentiableTask,
    policy: GaussianPolicy,
    optimizer: torch.optim.Optimizer,
    method: str,
    num_states: int,
    num_samples: int,
    baseline: Baseline | None = None,
    max_norm: float | None = None,
    generator: torch.Generator | None = None,
) -> UpdateResult:
    """Draw ``num_states`` initial states, estimate the policy gradient with ``method`` from
    ``num_samples`` episodes per state (one deterministic episode for ``deterministic``) and
    take one optimizer step.

    ``pathwise``: ``rp.Pathwise()`` through the simulator; ``reinforce``:
    ``rp.ScoreFunction(baseline)`` with whole-episode credit; ``reinforce-rtg``: score function
    with reward-to-go credit; ``deterministic``: deterministic policy gradient through the
    simulator.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    x0 = task.initial_state(num_states, generator)
    if method == "pathwise":
        loss = policy_objective(task, policy, x0, Pathwise(), num_samples)
    elif method == "reinforce":
        loss = policy_objective(task, policy, x0, ScoreFunction(baseline), num_samples)
    elif method == "reinforce-rtg":
        loss = reward_to_go_objective(task, policy, x0, num_samples, baseline)
    else:
        loss = deterministic_objective(task, policy, x0)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    _step(optimizer, loss, params, max_norm)
    return UpdateResult(float(loss.detach()))


def cartpole_update(
    env: Any,
    policy: nn.Module,
    optimizer: torch.optim.Optimizer,
    baseline: Baseline | None = None,
    discount: float = 0.99,
    seed: int | None = None,
) -> UpdateResult:
    """Run one episode in each environment and take one REINFORCE step with reward-to-go
    credit (:func:`reinforce_surrogate`; the cost is minus the reward). ``Learned`` baselines
    see ``(observation, t / 500)``."""
    batch = collect_episodes(env, policy, seed=seed)
    steps = batch.obs.shape[1]
    log_probs = policy(batch.obs).log_prob(batch.actions)
    returns = reward_to_go(-batch.rewards, discount)
    time = torch.arange(steps, dtype=batch.obs.dtype, device=batch.obs.device) / MAX_STEPS
    time = time.expand(batch.obs.shape[0], steps)
    features = torch.cat([batch.obs, time.unsqueeze(-1)], dim=-1)
    loss = reinforce_surrogate(log_probs, returns, baseline, mask=batch.mask, features=features)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    _step(optimizer, loss, params, None)
    episode_returns = batch.rewards.sum(-1)
    return UpdateResult(-float(episode_returns.mean()), tuple(episode_returns.tolist()), batch.env_steps)
