"""CartPole episodes from gymnasium's vector env, and one REINFORCE update."""

from __future__ import annotations

import torch
from seeds import seeded

from reparam.baselines import LeaveOneOut
from reparam.models.policy import (
    CategoricalPolicy,
    cartpole_update,
    collect_episodes,
    evaluate_policy,
    make_cartpole,
)


def test_episode_batch_is_consistent() -> None:
    torch.manual_seed(seeded(0))
    env = make_cartpole(6)
    policy = CategoricalPolicy(4, 2, 16)
    torch.manual_seed(seeded(0))
    batch = collect_episodes(env, policy, seed=seeded(0))
    env.close()
    n, steps = batch.actions.shape
    assert n == 6 and batch.obs.shape == (6, steps, 4)
    # Every episode is a prefix of the padded window; CartPole pays +1 per step, so the
    # return equals the length.
    lengths = batch.lengths
    assert int(lengths.max()) == steps
    for i in range(6):
        assert bool(batch.mask[i, : lengths[i]].all()) and not bool(batch.mask[i, lengths[i] :].any())
    torch.testing.assert_close(batch.rewards.sum(-1), lengths.float())
    assert batch.env_steps == int(lengths.sum())
    # The same seed replays the same episodes.
    torch.manual_seed(seeded(0))
    env = make_cartpole(6)
    again = collect_episodes(env, policy, seed=seeded(0))
    env.close()
    torch.testing.assert_close(again.rewards, batch.rewards)


def test_update_moves_the_policy_and_reports_steps() -> None:
    torch.manual_seed(seeded(1))
    env = make_cartpole(4)
    policy = CategoricalPolicy(4, 2, 16)
    before = [p.detach().clone() for p in policy.parameters()]
    optimizer = torch.optim.Adam(policy.parameters(), lr=0.01)
    result = cartpole_update(env, policy, optimizer, LeaveOneOut(), seed=seeded(3))
    env.close()
    assert len(result.episode_returns) == 4 and result.env_steps == sum(result.episode_returns)
    assert result.cost == -sum(result.episode_returns) / 4
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))
    returns = evaluate_policy(policy, episodes=5, seed=seeded(0))
    assert returns.shape == (5,) and (returns >= 1).all() and (returns <= 500).all()
