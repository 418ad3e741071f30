"""Discrete-time algebraic Riccati equation, solved in torch."""

from __future__ import annotations

import torch
from torch import Tensor


def solve_discrete_riccati(
    A: Tensor, B: Tensor, Q: Tensor, R: Tensor, tol: float = 1e-12, max_iter: int = 100_000
) -> Tensor:
    r"""The stabilising solution ``P`` of the discrete algebraic Riccati equation

    .. math::
        P = Q + A^\top P A - A^\top P B\,(R + B^\top P B)^{-1} B^\top P A,

    found by iterating the Riccati difference equation (value iteration) from ``P = Q`` until
    the relative change is below ``tol``. It converges for ``(A, B)`` stabilisable and
    ``(A, Q^{1/2})`` detectable with ``R`` positive definite (Bertsekas, "Dynamic Programming
    and Optimal Control", vol. 1, section 4.1). Computed in the dtype of ``A``.

    Raises:
        RuntimeError: when the iteration does not converge in ``max_iter`` steps (the pair is
            probably not stabilisable).
    """
    P: Tensor = Q.clone()
    for _ in range(max_iter):
        gain: Tensor = torch.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        new = Q + A.T @ P @ A - A.T @ P @ B @ gain
        new = 0.5 * (new + new.T)
        change = (new - P).abs().max() / new.abs().max().clamp_min(1e-300)
        P = new
        if float(change) < tol:
            return P
    raise RuntimeError(
        f"solve_discrete_riccati did not converge in max_iter={max_iter} iterations; check that "
        "(A, B) is stabilisable and R is positive definite, or raise max_iter."
    )


def optimal_gain(A: Tensor, B: Tensor, R: Tensor, P: Tensor) -> Tensor:
    r"""The optimal feedback gain :math:`K^* = (R + B^\top P B)^{-1} B^\top P A` (``u = -K^* x``)."""
    gain: Tensor = torch.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    return gain
