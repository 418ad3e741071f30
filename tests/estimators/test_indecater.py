"""IndeCateR (De Smet et al. 2023): unbiased for every family, cost as documented."""

from __future__ import annotations

import torch
from torch.distributions import Bernoulli, Categorical

import reparam as rp

# Unbiasedness z-test as in test_arm.py: |z| < 5 per coordinate (false-alarm rate < 6e-7).


def test_unbiased_with_interactions(discrete_case, zscores) -> None:
    _, exact = discrete_case.exact_gradient()
    estimates = discrete_case.replicated_gradients(rp.IndeCateR(), 1, 12000)
    assert zscores(estimates, exact).abs().max() < 5


def test_separable_cost_has_zero_variance() -> None:
    # For f(b) = sum_i g_i(b_i) the substituted costs give grad = sum_k g_i(k) grad p_i(k)
    # exactly, whatever the sample: Rao-Blackwellisation removes all the noise.
    logits = torch.tensor([0.3, -1.0, 2.0], requires_grad=True)
    grads = []
    for _ in range(5):
        value = rp.IndeCateR()(
            lambda b: (b * torch.tensor([1.0, -2.0, 3.0])).sum(-1), Bernoulli(logits=logits), 1
        )
        grads.append(torch.autograd.grad(value, logits)[0])
    p = torch.sigmoid(logits.detach())
    for g in grads:
        torch.testing.assert_close(g, torch.tensor([1.0, -2.0, 3.0]) * p * (1 - p))


def test_cost_in_evaluations_matches_what_f_sees() -> None:
    rows: list[int] = []

    def f(z: torch.Tensor) -> torch.Tensor:
        rows.append(z.shape[0])
        return z.float().sum(-1)

    q = Categorical(logits=torch.zeros(4, 3))
    rp.IndeCateR()(f, q, 2)
    # N (1 + D (K - 1)) = 2 (1 + 4 * 2) = 18, in two calls: the samples and the substitutes.
    assert rows == [2, 16]
    assert sum(rows) == rp.IndeCateR().evaluations(q, 2) == 18


def test_batched_costs_count_only_their_own_variables() -> None:
    rows: list[int] = []

    def f(b: torch.Tensor) -> torch.Tensor:
        rows.append(b.shape[0])
        return b.sum(-1)  # one cost per row of a (5, 3) batch: D = 3 per cost

    q = Bernoulli(logits=torch.zeros(5, 3))
    rp.IndeCateR()(f, q, 1)
    assert sum(rows) == rp.IndeCateR().evaluations(q, 1, cost_dims=1) == 4
