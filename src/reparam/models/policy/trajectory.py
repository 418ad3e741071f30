"""The distribution over action sequences that a stochastic policy induces on a task."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from reparam.models.policy.gaussian_policy import GaussianPolicy
from reparam.models.policy.task import DifferentiableTask


def episode_cost(task: DifferentiableTask, initial_state: Tensor, actions: Tensor) -> Tensor:
    r"""Replay the actions from the initial state and return the episode cost.

    .. math::
        C(u_{0:T-1}) = \sum_{t=0}^{T-1} c(x_t, u_t) + c_T(x_T), \qquad x_{t+1} = F(x_t, u_t).

    Args:
        task: the differentiable task.
        initial_state: ``(*batch, state_dim)``.
        actions: ``(*sample, *batch, T, action_dim)``.

    Returns:
        Costs shaped ``(*sample, *batch)``, differentiable in ``actions`` (pathwise) and in
        the task's own parameters.
    """
    state = initial_state.expand(*actions.shape[:-2], initial_state.shape[-1])
    total = torch.zeros(state.shape[:-1], dtype=state.dtype, device=state.device)
    for t in range(actions.shape[-2]):
        action = actions[..., t, :]
        total = total + task.cost(state, action)
        state = task.step(state, action)
    return total + task.terminal_cost(state)


class TrajectoryDistribution(Distribution):
    r"""The law of the action sequence ``u_{0:T-1}`` of a Gaussian policy run on a task.

    For fixed initial states ``x_0`` (the batch) the actions are drawn one step at a time,

    .. math::
        u_t = \mu_\theta(x_t) + \sigma_\theta\,\epsilon_t, \qquad x_{t+1} = F(x_t, u_t),

    so the density is the product of the policy's densities along the replayed states,
    :math:`\log q_\theta(u) = \sum_t \log \pi_\theta(u_t \mid x_t(u_{<t}))` (the dynamics are
    deterministic and do not depend on ``theta``, so they contribute nothing to the score).
    ``rsample`` keeps the whole chain differentiable: ``u_t`` depends on ``theta`` directly and
    through ``x_t``, which is what the pathwise estimator (back-propagation through time, SVG(inf)
    of Heess et al., NeurIPS 2015) differentiates. ``batch_shape`` is the batch of initial states
    and ``event_shape`` is ``(T, action_dim)``.

    With this distribution a policy objective is one call of the library's primitive,
    ``rp.expect(lambda u: episode_cost(task, x0, u), TrajectoryDistribution(task, policy, x0))``.
    """

    arg_constraints: dict = {}  # noqa: RUF012
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(self, task: DifferentiableTask, policy: GaussianPolicy, initial_state: Tensor) -> None:
        if initial_state.dim() < 1 or initial_state.shape[-1] != task.state_dim:
            raise ValueError(
                f"initial_state must be shaped (*batch, state_dim={task.state_dim}), got "
                f"{tuple(initial_state.shape)}; draw it with task.initial_state(num_episodes)."
            )
        self.task, self.policy, self.initial_state = task, policy, initial_state
        super().__init__(
            batch_shape=initial_state.shape[:-1],
            event_shape=torch.Size((task.horizon, task.action_dim)),
            validate_args=False,
        )

    def rsample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = ()) -> Tensor:
        shape = torch.Size(sample_shape) + self.initial_state.shape
        state = self.initial_state.expand(shape)
        actions = []
        for _ in range(self.task.horizon):
            action = self.policy(self.task.observe(state)).rsample()
            actions.append(action)
            state = self.task.step(state, action)
        return torch.stack(actions, dim=-2)

    def sample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = ()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def step_log_probs(self, actions: Tensor) -> Tensor:
        """``log pi(u_t | x_t)`` for every step, shaped ``(*sample, *batch, T)``."""
        state = self.initial_state.expand(*actions.shape[:-2], self.initial_state.shape[-1])
        terms = []
        for t in range(actions.shape[-2]):
            action = actions[..., t, :]
            terms.append(self.policy(self.task.observe(state)).log_prob(action).sum(-1))
            state = self.task.step(state, action)
        return torch.stack(terms, dim=-1)

    def log_prob(self, value: Tensor) -> Tensor:
        return self.step_log_probs(value).sum(-1)
