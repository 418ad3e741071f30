"""Reward-to-go REINFORCE with baselines, checked by enumeration on a tiny episodic MDP."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from seeds import seeded
from torch import nn

from reparam.baselines import DeltaMethod, Learned, LeaveOneOut, MovingAverage
from reparam.models.policy.reinforce import reinforce_surrogate, reward_to_go

T, STATES, ACTIONS = 3, 3, 2


def test_reward_to_go_matches_a_direct_sum() -> None:
    costs = torch.randn(4, 6, dtype=torch.float64)
    for gamma in (1.0, 0.9):
        got = reward_to_go(costs, gamma)
        for t in range(6):
            expected = sum(gamma ** (s - t) * costs[:, s] for s in range(t, 6))
            torch.testing.assert_close(got[:, t], expected)
    with pytest.raises(ValueError, match="discount"):
        reward_to_go(costs, 0.0)


def test_surrogate_is_zero_valued_with_the_reinforce_gradient() -> None:
    theta = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    log_probs = theta * 0.7
    returns = torch.randn(5, 4, dtype=torch.float64)
    mask = torch.ones(5, 4, dtype=torch.bool)
    mask[0, 2:] = False
    surrogate = reinforce_surrogate(log_probs, returns, LeaveOneOut(), mask=mask)
    assert float(surrogate.detach()) == 0.0
    (grad,) = torch.autograd.grad(surrogate, theta)
    # By hand: weights G_t - mean of the other episodes' G_t, zero outside the episode, 1/N.
    baseline = (returns.sum(0, keepdim=True) - returns) / 4
    expected = torch.where(mask, (returns - baseline) * 0.7 / 5, torch.zeros_like(returns))
    torch.testing.assert_close(grad, expected)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="same shape"):
        reinforce_surrogate(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="DeltaMethod"):
        reinforce_surrogate(torch.zeros(2, 3), torch.zeros(2, 3), DeltaMethod())
    with pytest.raises(ValueError, match="features"):
        reinforce_surrogate(torch.zeros(2, 3), torch.zeros(2, 3), Learned(nn.Linear(2, 1)))


# A tiny episodic MDP: state s = number of 1-actions so far, policy logits theta[t, s], cost
# c(s, a) = (a - 0.4 s)^2 + 0.3 s, and the episode ends once s reaches 2 (so episodes have
# different lengths and the mask matters). J(theta) = sum over the 8 action sequences of
# P(sequence) * cost, differentiated by autograd, is the exact reference.


def _cost(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return (a - 0.4 * s) ** 2 + 0.3 * s


def _exact(theta: torch.Tensor) -> torch.Tensor:
    theta = theta.clone().requires_grad_(True)
    total = torch.zeros((), dtype=torch.float64)
    for seq in itertools.product(range(ACTIONS), repeat=T):
        s, logp, cost = 0, torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
        for t, a in enumerate(seq):
            if s >= 2:
                break
            logp = logp + torch.log_softmax(theta[t, s], -1)[a]
            cost = cost + _cost(torch.tensor(float(s)), torch.tensor(float(a)))
            s += a
        # a sequence that ended early is enumerated once per possible tail: count it once
        total = total + logp.exp() * cost / _tail_count(seq)
    (grad,) = torch.autograd.grad(total, theta)
    return grad


def _tail_count(seq: tuple[int, ...]) -> int:
    """How many of the enumerated sequences share this one's played prefix."""
    s = 0
    for t, a in enumerate(seq):
        s += a
        if s >= 2:
            return ACTIONS ** (T - t - 1)
    return 1


def _estimates(theta: torch.Tensor, baseline: object, repeats: int, n: int) -> torch.Tensor:
    """``repeats`` independent estimates (each from ``n`` episodes) of dJ/dtheta."""
    params = theta.expand(repeats, *theta.shape).clone().requires_grad_(True)
    rows = torch.arange(repeats).unsqueeze(0).expand(n, repeats)
    s = torch.zeros(n, repeats, dtype=torch.long)
    log_probs, costs, masks, feats = [], [], [], []
    for t in range(T):
        alive = s < 2
        logits = params[rows, t, s.clamp(max=STATES - 1)]
        dist = torch.distributions.Categorical(logits=logits)
        a = dist.sample()
        log_probs.append(dist.log_prob(a))
        costs.append(
            torch.where(alive, _cost(s.double(), a.double()), torch.zeros(n, repeats, dtype=torch.float64))
        )
        masks.append(alive)
        feats.append(torch.stack([s.double(), torch.full_like(s, t).double()], -1))
        s = torch.where(alive, s + a, s)
    returns = reward_to_go(torch.stack(costs, -1))
    surrogate = reinforce_surrogate(
        torch.stack(log_probs, -1),
        returns,
        baseline,
        mask=torch.stack(masks, -1),  # type: ignore[arg-type]
        features=torch.stack(feats, -2),
    )
    (surrogate * repeats).backward()  # the surrogate averages over the copies
    return params.grad.reshape(repeats, -1)


def _learned() -> Learned:
    module = nn.Linear(2, 1).double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor([[0.2, -0.3]]))
        module.bias.fill_(0.8)
    return Learned(module)


@pytest.mark.parametrize("name", ["none", "leave-one-out", "moving-average", "learned"])
def test_unbiased_against_enumeration(name: str) -> None:
    # |mean - exact| < 5 standard errors in every reachable coordinate (~ 12 coordinates).
    torch.manual_seed(seeded(5))
    theta = torch.randn(T, STATES, ACTIONS, dtype=torch.float64) * 0.5
    moving = MovingAverage(0.5)
    moving(torch.tensor([1.0, 1.0], dtype=torch.float64), None, None, None)  # type: ignore[arg-type]
    baseline = {
        "none": None,
        "leave-one-out": LeaveOneOut(),
        "moving-average": moving,
        "learned": _learned(),
    }[name]
    exact = _exact(theta).reshape(-1)
    grads = _estimates(theta, baseline, repeats=4000, n=4)
    se = grads.std(0) / math.sqrt(grads.shape[0])
    reachable = exact.abs() > 0
    z = (grads.mean(0) - exact)[reachable] / se[reachable]
    assert z.abs().max() < 5, (name, z)
    # unreachable (t, s) cells get exactly zero gradient
    assert torch.all(grads[:, ~reachable] == 0)
