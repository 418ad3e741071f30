"""Per-example likelihoods against torch.distributions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal

from reparam.nn.likelihoods import bernoulli_nll, categorical_nll, gaussian_head, heteroscedastic_gaussian_nll


def test_heteroscedastic_gaussian_nll() -> None:
    output = torch.randn(5, 2, dtype=torch.float64)
    target = torch.randn(5, 1, dtype=torch.float64)  # (N, 1) targets are accepted too
    _, scale = gaussian_head(output)
    torch.testing.assert_close(scale, F.softplus(output[:, 1]) + 1e-3)
    expected = -Normal(output[:, 0], scale).log_prob(target[:, 0])
    torch.testing.assert_close(heteroscedastic_gaussian_nll(output, target), expected)


def test_huge_negative_raw_scale_stays_finite() -> None:
    output = torch.tensor([[0.0, -1e6]])
    assert torch.isfinite(heteroscedastic_gaussian_nll(output, torch.tensor([0.5]))).all()


def test_categorical_and_bernoulli() -> None:
    logits = torch.randn(4, 3)
    labels = torch.tensor([0, 2, 1, 1])
    torch.testing.assert_close(
        categorical_nll(logits, labels), -torch.log_softmax(logits, -1)[range(4), labels]
    )
    logits = torch.randn(4, 6)
    target = torch.bernoulli(torch.full((4, 6), 0.5))
    torch.testing.assert_close(
        bernoulli_nll(logits, target), -Bernoulli(logits=logits).log_prob(target).sum(-1)
    )


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="does not match"):
        heteroscedastic_gaussian_nll(torch.randn(4, 2), torch.randn(3))
    with pytest.raises(ValueError, match="must match"):
        bernoulli_nll(torch.randn(4, 2), torch.randn(4, 3))
