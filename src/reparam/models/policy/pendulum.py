"""A torque-limited pendulum (the gymnasium ``Pendulum-v1`` dynamics) written in torch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def angle_normalize(angle: Tensor) -> Tensor:
    """Wrap an angle to ``[-pi, pi)``."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


@dataclass
class Pendulum:
    r"""Swing a pendulum up and hold it upright with a limited torque; batched over episodes.

    State ``x = (theta, omega)`` (``theta = 0`` upright), action a torque ``u``:

    .. math::
        \bar u = \operatorname{clip}(u, -u_{max}, u_{max}), \quad
        \omega' = \operatorname{clip}\big(\omega + (\tfrac{3g}{2l}\sin\theta
            + \tfrac{3}{ml^2}\bar u)\,dt,\ -\omega_{max}, \omega_{max}\big), \quad
        \theta' = \theta + \omega'\,dt,

    .. math::
        c(x, u) = \operatorname{wrap}(\theta)^2 + 0.1\,\omega^2 + 0.001\,\bar u^2,

    exactly the dynamics and cost of gymnasium's ``Pendulum-v1`` (``g = 10``, ``dt = 0.05``,
    ``u_max = 2``, ``omega_max = 8``) but differentiable in torch. The torque and speed limits
    and the angle wrap make it *non-smooth*: the pathwise gradient is zero where a limit binds
    and the cost has a kink at ``theta = pi``. Near the top the dynamics are unstable, and a
    pendulum swinging through many turns is sensitive to its initial conditions, which is what
    makes back-propagation through long horizons ill-conditioned. Initial states are uniform,
    ``theta`` in ``[-pi, pi]`` and ``omega`` in ``[-1, 1]``, as in gymnasium.
    """

    horizon: int = 100
    gravity: float = 10.0
    mass: float = 1.0
    length: float = 1.0
    dt: float = 0.05
    max_torque: float = 2.0
    max_speed: float = 8.0
    dtype: torch.dtype = torch.float32
    device: torch.device | str | None = None

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}.")
        if self.max_torque <= 0 or self.max_speed <= 0 or self.dt <= 0:
            raise ValueError("max_torque, max_speed and dt must be positive.")
        self.state_dim, self.action_dim = 2, 1

    def initial_state(self, num_episodes: int, generator: torch.Generator | None = None) -> Tensor:
        """Uniform initial states in ``self.dtype`` on ``self.device`` (drawn where ``generator``
        lives, CPU by default)."""
        where = generator.device if generator is not None else "cpu"
        u = torch.rand(num_episodes, 2, generator=generator, dtype=self.dtype, device=where)
        high = torch.tensor([math.pi, 1.0], dtype=self.dtype, device=where)
        return ((2 * u - 1) * high).to(self.device)

    def step(self, state: Tensor, action: Tensor) -> Tensor:
        theta, omega = state[..., 0], state[..., 1]
        torque = action[..., 0].clamp(-self.max_torque, self.max_torque)
        accel = 3 * self.gravity / (2 * self.length) * torch.sin(theta)
        accel = accel + 3.0 / (self.mass * self.length**2) * torque
        omega = (omega + accel * self.dt).clamp(-self.max_speed, self.max_speed)
        return torch.stack([theta + omega * self.dt, omega], dim=-1)

    def cost(self, state: Tensor, action: Tensor) -> Tensor:
        torque = action[..., 0].clamp(-self.max_torque, self.max_torque)
        theta, omega = state[..., 0], state[..., 1]
        return angle_normalize(theta) ** 2 + 0.1 * omega**2 + 0.001 * torque**2

    def terminal_cost(self, state: Tensor) -> Tensor:
        return torch.zeros(state.shape[:-1], dtype=state.dtype, device=state.device)

    def observe(self, state: Tensor) -> Tensor:
        theta, omega = state[..., 0], state[..., 1]
        return torch.stack([torch.cos(theta), torch.sin(theta), omega / self.max_speed], dim=-1)

    def with_horizon(self, horizon: int) -> Pendulum:
        """The same pendulum with another horizon."""
        return Pendulum(
            horizon,
            self.gravity,
            self.mass,
            self.length,
            self.dt,
            self.max_torque,
            self.max_speed,
            self.dtype,
            self.device,
        )
