"""A conjugate Gaussian model with a closed-form posterior and evidence, for the vi tests.

z ~ N(0, I_2),  x_i | z ~ N(A z, s^2 I_2), i = 1..n.  Then
    posterior precision  P = I + n A^T A / s^2,   covariance S = P^{-1},
    posterior mean       m = S A^T (sum_i x_i) / s^2,
    evidence             vec(x) ~ N(0, K K^T + s^2 I_{2n}),  K = [A; A; ...; A]  (2n x 2).
A is not orthogonal, so the posterior covariance has off-diagonal terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from seeds import seeded
from torch import Tensor
from torch.distributions import Independent, MultivariateNormal, Normal


@dataclass
class Conjugate:
    x: Tensor
    a: Tensor
    noise: float
    prior: Independent
    post_mean: Tensor
    post_cov: Tensor
    log_evidence: Tensor

    def log_likelihood(self, z: Tensor, x: Tensor | None = None) -> Tensor:
        """sum_i log N(x_i; A z, s^2 I) for z shaped (S, 2) -> (S,)."""
        x = self.x if x is None else x
        mean = z @ self.a.T  # (S, 2)
        dist = Independent(Normal(mean.unsqueeze(-2), self.noise), 1)
        return dist.log_prob(x).sum(-1)

    def log_joint(self, z: Tensor) -> Tensor:
        return self.log_likelihood(z) + self.prior.log_prob(z)

    def posterior(self) -> MultivariateNormal:
        return MultivariateNormal(self.post_mean, self.post_cov)


def make_conjugate(n: int = 20, seed: int = 3) -> Conjugate:
    g = torch.Generator().manual_seed(seeded(seed))
    dtype = torch.float64
    a = torch.tensor([[1.0, 0.5], [0.3, 0.8]], dtype=dtype)
    noise = 1.5
    z_true = torch.tensor([0.7, -1.2], dtype=dtype)
    x = z_true @ a.T + noise * torch.randn(n, 2, generator=g, dtype=dtype)
    precision = torch.eye(2, dtype=dtype) + n * a.T @ a / noise**2
    cov = torch.linalg.inv(precision)
    mean = cov @ a.T @ x.sum(0) / noise**2
    k = a.repeat(n, 1)
    evidence = MultivariateNormal(
        torch.zeros(2 * n, dtype=dtype), k @ k.T + noise**2 * torch.eye(2 * n, dtype=dtype)
    )
    prior = Independent(Normal(torch.zeros(2, dtype=dtype), torch.ones(2, dtype=dtype)), 1)
    return Conjugate(x, a, noise, prior, mean, cov, evidence.log_prob(x.reshape(-1)))


@pytest.fixture
def conjugate() -> Conjugate:
    return make_conjugate()
