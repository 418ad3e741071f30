"""VIMCO (Mnih & Rezende 2016): unbiased gradient of E[log mean_k exp f(z_k)]."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Categorical

import reparam as rp

K = 3


def multi_sample_objective(f, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E[log (1/K) sum_k exp f(z_k)] and its gradient, exactly: rp.Exact on the K-fold product
    distribution (K copies of q stacked as a (K, D) batch)."""
    logits = logits.detach().clone().requires_grad_(True)
    q_k = Bernoulli(logits=logits.expand(K, *logits.shape))

    def bound(zz: torch.Tensor) -> torch.Tensor:
        m = zz.shape[0]
        log_w = f(zz.reshape(m * K, *logits.shape)).reshape(m, K)
        return torch.logsumexp(log_w, 1) - math.log(K)

    value = rp.Exact()(bound, q_k, 1)
    (grad,) = torch.autograd.grad(value, logits)
    return value.detach(), grad


def test_unbiased_for_the_multi_sample_bound(bernoulli_case, zscores) -> None:
    # z-test as in test_arm.py (|z| < 5), against the exact gradient of the K-sample bound.
    def log_w(b: torch.Tensor) -> torch.Tensor:
        return -0.3 * bernoulli_case.f(b)

    value, exact = multi_sample_objective(log_w, bernoulli_case.logits)
    logits = bernoulli_case.logits.expand(4000, 3).clone().requires_grad_(True)
    bounds = rp.VIMCO()(log_w, Bernoulli(logits=logits), K)
    (estimates,) = torch.autograd.grad(bounds.sum(), logits)
    assert zscores(estimates, exact).abs().max() < 5
    assert zscores(bounds.detach().unsqueeze(-1), value.unsqueeze(0)).abs().max() < 5


def test_needs_two_samples() -> None:
    with pytest.raises(ValueError, match="num_samples >= 2"):
        rp.VIMCO()(lambda b: b.sum(-1), Bernoulli(logits=torch.zeros(2)), 1)


def test_value_is_the_log_mean_exp_bound() -> None:
    seen: list[torch.Tensor] = []

    def f(b: torch.Tensor) -> torch.Tensor:
        out = b.sum(-1) * 0.5
        seen.append(out)
        return out

    value = rp.VIMCO()(f, Bernoulli(logits=torch.zeros(4)), 5)
    torch.testing.assert_close(value, torch.logsumexp(seen[0], 0) - math.log(5))


def test_saturated_logits_give_finite_value_and_zero_gradient() -> None:
    # Bernoulli(logits=+-inf).log_prob is nan inside torch; the score term made the bound nan.
    logits = torch.tensor([float("inf"), -float("inf"), 0.3], dtype=torch.float64, requires_grad=True)
    weights = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    seen: list[torch.Tensor] = []

    def f(b: torch.Tensor) -> torch.Tensor:
        seen.append(b @ weights)
        return seen[-1]

    value = rp.VIMCO()(f, Bernoulli(logits=logits), 4)
    torch.testing.assert_close(value, torch.logsumexp(seen[0], 0) - math.log(4))
    (grad,) = torch.autograd.grad(value, logits)
    assert torch.isfinite(grad).all()
    assert torch.equal(grad[:2], torch.zeros(2, dtype=torch.float64))


def test_masked_categorical_logits() -> None:
    logits = torch.tensor([[0.0, -float("inf"), 1.0]], dtype=torch.float64, requires_grad=True)
    value = rp.VIMCO()(lambda z: -z.double().sum(-1), Categorical(logits=logits), 4)
    (grad,) = torch.autograd.grad(value, logits)
    assert torch.isfinite(value) and torch.isfinite(grad).all() and grad[0, 1] == 0
