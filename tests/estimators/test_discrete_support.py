"""Helpers shared by the discrete estimators: family detection, noise, cost crediting."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Independent, Normal, OneHotCategorical

from reparam.estimators.discrete_support import (
    costs_per_variable,
    discrete_kind,
    gumbel_noise,
    logistic_noise,
    relaxed_input,
    score,
    sum_to_cost,
    uniform,
)


def test_kinds_and_errors() -> None:
    assert discrete_kind(Bernoulli(logits=torch.zeros(2)), "X") == "bernoulli"
    assert discrete_kind(Independent(Bernoulli(logits=torch.zeros(2, 3)), 1), "X") == "bernoulli"
    assert discrete_kind(Categorical(logits=torch.zeros(2, 3)), "X") == "categorical"
    assert discrete_kind(OneHotCategorical(logits=torch.zeros(2, 3)), "X") == "onehot"
    with pytest.raises(TypeError, match="estimator=X supports q of type Bernoulli"):
        discrete_kind(Normal(0.0, 1.0), "X", ("bernoulli",))


def test_noise_is_finite_even_at_the_edges() -> None:
    like = torch.zeros((), dtype=torch.float32)
    u = uniform((10**6,), like)
    assert (u > 0).all() and (u < 1).all()
    assert torch.isfinite(logistic_noise((10**6,), like)).all()
    assert torch.isfinite(gumbel_noise((10**6,), like)).all()


def test_credit_shapes() -> None:
    costs = torch.randn(4, 5)
    assert costs_per_variable(costs, 4).shape == (4, 5, 1, 1)
    assert sum_to_cost(torch.ones(4, 5, 3, 2), costs).shape == (4, 5)
    assert sum_to_cost(torch.ones(5, 3, 2), costs, leading=0).shape == (5,)
    torch.testing.assert_close(sum_to_cost(torch.ones(5, 3, 2), costs, leading=0), torch.full((5,), 6.0))


def test_score_matches_autograd() -> None:
    logits = torch.randn(3, 4, requires_grad=True)
    b = torch.tensor([0, 3, 1])
    (auto,) = torch.autograd.grad(Categorical(logits=logits).log_prob(b).sum(), logits)
    torch.testing.assert_close(score("categorical", b, logits.detach()), auto)
    logits = torch.randn(5, requires_grad=True)
    b = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    (auto,) = torch.autograd.grad(Bernoulli(logits=logits).log_prob(b).sum(), logits)
    torch.testing.assert_close(score("bernoulli", b, logits.detach()), auto)


def test_relaxed_category_number() -> None:
    y = torch.tensor([[0.0, 0.0, 1.0], [0.2, 0.3, 0.5]])
    torch.testing.assert_close(relaxed_input("categorical", y), torch.tensor([2.0, 1.3]))
    assert relaxed_input("onehot", y) is y
