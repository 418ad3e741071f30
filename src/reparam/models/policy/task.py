"""The protocol every differentiable control task implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class DifferentiableTask(Protocol):
    r"""A finite-horizon control task written in torch and batched over episodes.

    States are tensors shaped ``(*batch, state_dim)``, actions ``(*batch, action_dim)``. The
    episode cost is

    .. math::
        C(x_0, u_{0:T-1}) = \sum_{t=0}^{T-1} c(x_t, u_t) + c_T(x_T), \qquad
        x_{t+1} = F(x_t, u_t),

    with ``F``, ``c`` and ``c_T`` differentiable (almost everywhere) in torch, so that the
    pathwise estimator can back-propagate through the whole episode.
    """

    state_dim: int
    action_dim: int
    horizon: int

    def initial_state(self, num_episodes: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``num_episodes`` initial states, shaped ``(num_episodes, state_dim)``."""
        ...

    def step(self, state: Tensor, action: Tensor) -> Tensor:
        """The next state ``F(x, u)``."""
        ...

    def cost(self, state: Tensor, action: Tensor) -> Tensor:
        """The per-step cost ``c(x, u)``, shaped like ``state.shape[:-1]``."""
        ...

    def terminal_cost(self, state: Tensor) -> Tensor:
        """The terminal cost ``c_T(x_T)``, shaped like ``state.shape[:-1]``."""
        ...

    def observe(self, state: Tensor) -> Tensor:
        """The policy's input features for ``state`` (e.g. ``(cos, sin, velocity)``)."""
        ...
