"""A linear-quadratic regulator, batched over episodes, with its known optimum."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from reparam.models.policy.riccati import optimal_gain, solve_discrete_riccati


def _double_integrator(dt: float) -> tuple[Tensor, Tensor]:
    A = torch.tensor([[1.0, dt], [0.0, 1.0]], dtype=torch.float64)
    B = torch.tensor([[0.5 * dt * dt], [dt]], dtype=torch.float64)
    return A, B


@dataclass
class LQR:
    r"""Linear dynamics, quadratic cost, Gaussian initial state:

    .. math::
        x_{t+1} = A x_t + B u_t, \qquad c(x, u) = x^\top Q x + u^\top R u, \qquad
        c_T(x) = x^\top P x, \qquad x_0 \sim \mathcal N(0, \Sigma_0).

    The terminal weight is the stabilising solution ``P`` of the discrete algebraic Riccati
    equation, so the value function of every step is ``x^T P x`` (plus a constant) and the
    stationary gain :math:`K^* = (R + B^\top P B)^{-1} B^\top P A` is the exact optimum of the
    finite-horizon problem, both for the deterministic policy ``u = -K x`` and for the Gaussian
    policy ``u = -K x + \sigma \epsilon`` at any fixed ``sigma``; the optimal expected cost is

    .. math::
        J^*(\sigma) = \operatorname{tr}(P \Sigma_0)
            + T \sigma^2 \big(\operatorname{tr} R + \operatorname{tr} B^\top P B\big)

    (each exploratory action ``sigma * eps`` adds ``sigma^2 eps^T (R + B^T P B) eps`` in
    expectation). Default: a double integrator with step ``dt = 0.1``, ``Q = I``,
    ``R = 0.1``, ``Sigma_0 = I``, horizon 50. Simulation runs in the dtype and on the device of
    the states (the float64 matrices are converted once per dtype/device and cached);
    ``initial_state`` returns ``dtype`` tensors on ``device``.

    Reference: Bertsekas, "Dynamic Programming and Optimal Control", vol. 1, section 4.1.
    """

    A: Tensor = field(default_factory=lambda: _double_integrator(0.1)[0])
    B: Tensor = field(default_factory=lambda: _double_integrator(0.1)[1])
    Q: Tensor = field(default_factory=lambda: torch.eye(2, dtype=torch.float64))
    R: Tensor = field(default_factory=lambda: 0.1 * torch.eye(1, dtype=torch.float64))
    initial_covariance: Tensor = field(default_factory=lambda: torch.eye(2, dtype=torch.float64))
    horizon: int = 50
    dtype: torch.dtype = torch.float32
    device: torch.device | str | None = None

    def __post_init__(self) -> None:
        n, m = self.B.shape
        if self.A.shape != (n, n):
            raise ValueError(f"A must be square ({n}, {n}) to match B of shape {tuple(self.B.shape)}.")
        if self.Q.shape != (n, n) or self.R.shape != (m, m):
            raise ValueError(
                f"Q must be ({n}, {n}) and R ({m}, {m}); got {tuple(self.Q.shape)}, {tuple(self.R.shape)}."
            )
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}.")
        self.state_dim, self.action_dim = n, m
        self.A, self.B, self.Q, self.R = (t.to(torch.float64) for t in (self.A, self.B, self.Q, self.R))
        self.initial_covariance = self.initial_covariance.to(torch.float64)
        self.P = solve_discrete_riccati(self.A, self.B, self.Q, self.R)
        self.K_star = optimal_gain(self.A, self.B, self.R, self.P)
        self._chol: Tensor = torch.linalg.cholesky(self.initial_covariance)
        self._cast: dict[tuple[str, torch.dtype, torch.device], Tensor] = {}

    def optimal_cost(self, sigma: float = 0.0) -> float:
        """``J*(sigma)``: the smallest expected episode cost of ``u = -K x + sigma eps``."""
        exploration = torch.trace(self.R) + torch.trace(self.B.T @ self.P @ self.B)
        value = torch.trace(self.P @ self.initial_covariance) + self.horizon * sigma**2 * exploration
        return float(value)

    def _m(self, name: str, like: Tensor) -> Tensor:
        """Matrix ``name`` in the dtype and on the device of ``like``, converted once and cached
        (no copy per simulation step)."""
        key = (name, like.dtype, like.device)
        cached = self._cast.get(key)
        if cached is None:
            matrix: Tensor = getattr(self, name)
            cached = self._cast[key] = matrix.to(dtype=like.dtype, device=like.device)
        return cached

    def initial_state(self, num_episodes: int, generator: torch.Generator | None = None) -> Tensor:
        """``num_episodes`` draws of ``x_0``, in ``self.dtype`` on ``self.device`` (drawn where
        ``generator`` lives, CPU by default, with the same values on every device)."""
        where = generator.device if generator is not None else "cpu"
        shape = (num_episodes, self.state_dim)
        noise = torch.randn(shape, generator=generator, dtype=torch.float64, device=where)
        return (noise @ self._chol.to(where).T).to(dtype=self.dtype, device=self.device)

    def step(self, state: Tensor, action: Tensor) -> Tensor:
        return state @ self._m("A", state).T + action @ self._m("B", state).T

    def cost(self, state: Tensor, action: Tensor) -> Tensor:
        Q, R = self._m("Q", state), self._m("R", state)
        return ((state @ Q) * state).sum(-1) + ((action @ R) * action).sum(-1)

    def terminal_cost(self, state: Tensor) -> Tensor:
        return ((state @ self._m("P", state)) * state).sum(-1)

    def observe(self, state: Tensor) -> Tensor:
        return state

    def with_horizon(self, horizon: int) -> LQR:
        """The same system with another horizon."""
        return LQR(self.A, self.B, self.Q, self.R, self.initial_covariance, horizon, self.dtype, self.device)


def expected_cost(lqr: LQR, K: Tensor, sigma: Tensor | float) -> Tensor:
    r"""The exact expected episode cost of the linear Gaussian policy ``u = -K x + sigma eps``.

    With ``x_0 ~ N(0, Sigma_0)`` every state is zero-mean Gaussian; its covariance follows

    .. math::
        \Sigma_{t+1} = (A - BK)\,\Sigma_t\,(A - BK)^\top + \sigma^2 B B^\top,

    and the expected cost is

    .. math::
        J(K, \sigma) = \sum_{t=0}^{T-1}\Big[\operatorname{tr}\big((Q + K^\top R K)\Sigma_t\big)
            + \sigma^2 \operatorname{tr} R\Big] + \operatorname{tr}(P\,\Sigma_T).

    Differentiable in ``K`` and ``sigma`` (autograd gives the exact policy gradient used as
    the reference in the tests). Computed in the dtype of ``K`` (use float64).
    """
    dtype = K.dtype
    A, B, Q, R, P = (getattr(lqr, n).to(K) for n in ("A", "B", "Q", "R", "P"))
    sigma = torch.as_tensor(sigma, dtype=dtype, device=K.device)
    closed = A - B @ K
    cov = lqr.initial_covariance.to(K)
    exploration = sigma**2 * (B @ B.T)
    total = K.new_zeros(())
    for _ in range(lqr.horizon):
        total = total + torch.trace((Q + K.T @ R @ K) @ cov) + sigma**2 * torch.trace(R)
        cov = closed @ cov @ closed.T + exploration
    return total + torch.trace(P @ cov)


def spectral_radius(matrix: Tensor) -> float:
    """Largest absolute eigenvalue (closed-loop stability check: ``< 1`` is stable)."""
    return float(torch.linalg.eigvals(matrix.to(torch.float64)).abs().max())


__all__ = ["LQR", "expected_cost", "spectral_radius"]
