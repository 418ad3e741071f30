"""Policy objectives on differentiable tasks whose gradient is one of the estimators."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from reparam.baselines.base import Baseline
from reparam.estimators.base import Estimator
from reparam.expect import expect
from reparam.models.policy.gaussian_policy import GaussianPolicy
from reparam.models.policy.reinforce import reinforce_surrogate, reward_to_go
from reparam.models.policy.task import DifferentiableTask
from reparam.models.policy.trajectory import TrajectoryDistribution, episode_cost


def policy_objective(
    task: DifferentiableTask,
    policy: GaussianPolicy,
    initial_state: Tensor,
    estimator: Estimator,
    num_samples: int = 1,
) -> Tensor:
    r"""The expected episode cost ``J(theta) = E[C]``, estimated by ``rp.expect``.

    The random variable is the whole action sequence (:class:`TrajectoryDistribution`) and
    ``f`` is the episode cost of those actions replayed from each initial state, so

    * ``rp.Pathwise()`` differentiates ``C`` through the reparameterised actions and the
      simulator (back-propagation through time): every action is credited with the exact
      effect of its noise on all later costs;
    * ``rp.ScoreFunction(baseline)`` credits every action of an episode with the episode's
      *whole* cost, :math:`\hat g = \frac1N\sum_n (C_n - b_n)\sum_t \nabla\log\pi(u^n_t\mid x^n_t)`;
      with ``LeaveOneOut()`` the baseline of episode ``n`` is the mean cost of the other
      ``N - 1`` episodes from the *same* initial state (a state-dependent baseline). See
      :func:`reward_to_go_objective` for per-step credit.

    Args:
        task, policy: the task and a Gaussian policy.
        initial_state: ``(B, state_dim)``; ``num_samples`` episodes are run from each.
        estimator: e.g. ``rp.Pathwise()`` or ``rp.ScoreFunction(baseline=LeaveOneOut())``.

    Returns:
        The mean cost over the batch; its gradient is the estimator's.
    """
    q = TrajectoryDistribution(task, policy, initial_state)
    return expect(lambda u: episode_cost(task, initial_state, u), q, estimator, num_samples).mean()


def reward_to_go_objective(
    task: DifferentiableTask,
    policy: GaussianPolicy,
    initial_state: Tensor,
    num_samples: int = 1,
    baseline: Baseline | None = None,
    discount: float = 1.0,
) -> Tensor:
    r"""REINFORCE with reward-to-go credit on a differentiable task (the simulator is used only
    as a black box: no gradient goes through it).

    Runs ``num_samples`` episodes from each initial state without gradient, then builds
    :func:`~reparam.models.policy.reinforce.reinforce_surrogate` from the per-step log-densities
    ``log pi(u_t | x_t)`` and the costs-to-go ``G_t = sum_{s >= t} c_s + c_T``. The value is the
    mean episode cost; the gradient is unbiased for ``discount = 1`` (see
    :func:`reinforce_surrogate` for the credit-assignment argument). With ``Learned`` baselines
    the features are ``(obs(x_t), t / T)``.
    """
    q = TrajectoryDistribution(task, policy, initial_state)
    actions = q.sample((num_samples,))
    with torch.no_grad():
        state = initial_state.expand(num_samples, *initial_state.shape)
        costs, features = [], []
        for t in range(task.horizon):
            time = state.new_full((*state.shape[:-1], 1), t / task.horizon)
            features.append(torch.cat([task.observe(state), time], dim=-1))
            costs.append(task.cost(state, actions[..., t, :]))
            state = task.step(state, actions[..., t, :])
        cost = torch.stack(costs, dim=-1)
        cost[..., -1] = cost[..., -1] + task.terminal_cost(state)
        returns = reward_to_go(cost, discount)
    surrogate = reinforce_surrogate(
        q.step_log_probs(actions), returns, baseline, features=torch.stack(features, dim=-2)
    )
    return cost.sum(-1).mean() + surrogate


def deterministic_objective(
    task: DifferentiableTask, policy: GaussianPolicy | nn.Module, initial_state: Tensor
) -> Tensor:
    r"""The episode cost of the deterministic policy ``u = mu_theta(x)``, differentiable in theta.

    Its gradient is the deterministic policy gradient (Silver et al., ICML 2014),

    .. math::
        \nabla_\theta J = \mathbb{E}_{x_0}\Big[\sum_t \nabla_\theta \mu_\theta(x_t)\,
            \nabla_u Q^\mu_t(x_t, u)\big|_{u = \mu_\theta(x_t)}\Big],

    with the action-value gradient ``grad_u Q`` computed exactly by back-propagating through the
    rest of the episode in the differentiable simulator rather than by a learned critic. The
    only randomness is the initial state, so the estimate is unbiased for ``J`` averaged over
    ``x_0``. For a :class:`GaussianPolicy` the mean network is used (``sigma`` is ignored).
    """
    mean = policy.mean if isinstance(policy, GaussianPolicy) else policy
    state = initial_state
    total = state.new_zeros(state.shape[:-1])
    for _ in range(task.horizon):
        action = mean(task.observe(state))
        total = total + task.cost(state, action)
        state = task.step(state, action)
    return (total + task.terminal_cost(state)).mean()
