"""Gaussian policies ``u ~ N(mu_theta(obs), sigma^2)`` with a state-independent scale."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Normal


class LinearFeedback(nn.Module):
    """The linear state feedback ``mu(x) = -K x`` (the form of the LQR optimum)."""

    def __init__(self, state_dim: int, action_dim: int, gain: Tensor | None = None) -> None:
        super().__init__()
        initial = torch.zeros(action_dim, state_dim) if gain is None else gain.detach().clone()
        if initial.shape != (action_dim, state_dim):
            raise ValueError(f"gain must have shape ({action_dim}, {state_dim}), got {tuple(initial.shape)}.")
        self.K = nn.Parameter(initial)

    def forward(self, obs: Tensor) -> Tensor:
        return -obs @ self.K.T


class GaussianPolicy(nn.Module):
    r"""``pi_theta(u | x) = N(u; mu_theta(obs(x)), diag(sigma^2))`` with ``sigma = exp(log_std)``.

    Reparameterised as ``u = mu_theta(x) + sigma * eps``, ``eps ~ N(0, I)``, so actions can be
    differentiated (pathwise) as well as scored (``log_prob``).

    Args:
        mean: module mapping observations ``(*batch, obs_dim)`` to action means
            ``(*batch, action_dim)``.
        action_dim: number of action dimensions.
        std: initial standard deviation (``> 0``).
        learn_std: train ``log_std`` as well (else it is a fixed buffer).
        std_shape: shape of ``log_std`` (default ``(action_dim,)``); it must broadcast against
            the action means, e.g. ``(R, action_dim)`` for ``R`` independent policy copies.
        dtype: dtype of ``log_std``.
    """

    def __init__(
        self,
        mean: nn.Module,
        action_dim: int,
        std: float = 1.0,
        learn_std: bool = True,
        std_shape: tuple[int, ...] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if not std > 0:
            raise ValueError(
                f"std must be > 0, got {std}; for a deterministic policy use deterministic_objective."
            )
        self.mean = mean
        log_std = torch.full(std_shape or (action_dim,), math.log(std), dtype=dtype)
        if learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    def forward(self, obs: Tensor) -> Normal:
        loc = self.mean(obs)
        # not validated: the scale is positive by construction, and validation would read a value
        # on the host at every simulation step (non-finite means surface as non-finite costs)
        scale = self.log_std.to(loc.dtype).exp().expand_as(loc)
        return Normal(loc, scale, validate_args=False)


def linear_gaussian_policy(
    state_dim: int, action_dim: int, std: float = 1.0, gain: Tensor | None = None, learn_std: bool = True
) -> GaussianPolicy:
    """``u = -K x + sigma eps`` (``K`` starts at ``gain`` or zero)."""
    return GaussianPolicy(LinearFeedback(state_dim, action_dim, gain), action_dim, std, learn_std)


def mlp(in_dim: int, out_dim: int, hidden: int = 64, layers: int = 2) -> nn.Sequential:
    """A tanh multilayer perceptron with a small-scale last layer (policies start near zero)."""
    modules: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.Tanh()]
        width = hidden
    last = nn.Linear(width, out_dim)
    with torch.no_grad():
        last.weight.mul_(0.01)
        last.bias.zero_()
    return nn.Sequential(*modules, last)


def mlp_gaussian_policy(
    obs_dim: int, action_dim: int, hidden: int = 64, std: float = 1.0, learn_std: bool = True
) -> GaussianPolicy:
    """A Gaussian policy whose mean is a two-layer tanh MLP of the observation."""
    return GaussianPolicy(mlp(obs_dim, action_dim, hidden), action_dim, std, learn_std)
