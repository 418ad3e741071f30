"""Gaussian and categorical policies: shapes, parameters, validation."""

from __future__ import annotations

import math

import pytest
import torch

from reparam.models.policy import (
    CategoricalPolicy,
    GaussianPolicy,
    LinearFeedback,
    linear_gaussian_policy,
    mlp_gaussian_policy,
)


def test_linear_gaussian_policy_is_minus_K_x_plus_noise() -> None:
    K = torch.tensor([[1.0, -2.0]])
    policy = linear_gaussian_policy(2, 1, std=0.7, gain=K)
    x = torch.randn(5, 2)
    dist = policy(x)
    torch.testing.assert_close(dist.loc, -(x @ K.T))
    torch.testing.assert_close(dist.scale, torch.full((5, 1), 0.7))
    assert dist.has_rsample
    assert {n for n, _ in policy.named_parameters()} == {"mean.K", "log_std"}
    fixed = linear_gaussian_policy(2, 1, std=0.7, learn_std=False)
    assert {n for n, _ in fixed.named_parameters()} == {"mean.K"}
    assert float(fixed.log_std) == pytest.approx(math.log(0.7))


def test_mlp_policy_and_validation() -> None:
    policy = mlp_gaussian_policy(3, 2, hidden=8, std=0.5)
    assert policy(torch.randn(4, 3)).loc.shape == (4, 2)
    with pytest.raises(ValueError, match="std must be > 0"):
        GaussianPolicy(LinearFeedback(2, 1), 1, std=0.0)
    with pytest.raises(ValueError, match="gain must have shape"):
        LinearFeedback(2, 1, gain=torch.zeros(2, 2))


def test_categorical_policy() -> None:
    policy = CategoricalPolicy(4, 2, hidden=8)
    dist = policy(torch.randn(7, 4))
    assert dist.probs.shape == (7, 2)
    torch.testing.assert_close(dist.probs.sum(-1), torch.ones(7))
