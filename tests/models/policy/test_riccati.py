"""The torch Riccati solver against scipy.linalg.solve_discrete_are."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from seeds import seeded

from reparam.models.policy.riccati import optimal_gain, solve_discrete_riccati


def _system(seed: int) -> tuple[torch.Tensor, ...]:
    rng = np.random.default_rng(seeded(seed))
    A = rng.normal(size=(3, 3)) * 0.6
    B = rng.normal(size=(3, 2))
    M = rng.normal(size=(3, 3))
    Q = M @ M.T + 0.1 * np.eye(3)
    R = np.diag(rng.uniform(0.1, 2.0, size=2))
    return tuple(torch.tensor(x, dtype=torch.float64) for x in (A, B, Q, R))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scipy(seed: int) -> None:
    A, B, Q, R = _system(seed)
    P = solve_discrete_riccati(A, B, Q, R)
    reference = scipy.linalg.solve_discrete_are(A.numpy(), B.numpy(), Q.numpy(), R.numpy())
    np.testing.assert_allclose(P.numpy(), reference, rtol=1e-8, atol=1e-8)
    # The gain is the minimiser of the Bellman equation: K = (R + B'PB)^{-1} B'PA.
    K = optimal_gain(A, B, R, P)
    ref_K = np.linalg.solve(
        R.numpy() + B.numpy().T @ reference @ B.numpy(), B.numpy().T @ reference @ A.numpy()
    )
    np.testing.assert_allclose(K.numpy(), ref_K, rtol=1e-7, atol=1e-8)
    # The closed loop A - BK is stable.
    assert np.abs(np.linalg.eigvals((A - B @ K).numpy())).max() < 1


def test_not_stabilisable_raises() -> None:
    # An unstable mode that B cannot reach: P grows without bound, no stabilising solution.
    A = torch.tensor([[2.0, 0.0], [0.0, 0.5]], dtype=torch.float64)
    B = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="stabilisable"):
        solve_discrete_riccati(
            A, B, torch.eye(2, dtype=torch.float64), torch.eye(1, dtype=torch.float64), max_iter=200
        )
