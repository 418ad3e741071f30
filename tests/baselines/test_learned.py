"""Learned (NVIL) baseline: unbiased, trained by the same backward pass, and input-dependent."""

from __future__ import annotations

import math

import pytest
import torch
from seeds import seeded
from torch import nn
from torch.distributions import Bernoulli, Categorical, Normal

import reparam as rp
from reparam.baselines import Learned


def test_unbiased_with_untrained_module(unbiased) -> None:
    # Any z-independent baseline keeps REINFORCE unbiased: exact d/dlogit E[b + 3] = p (1 - p).
    logit = torch.tensor(-0.4, dtype=torch.float64, requires_grad=True)
    p = 1 / (1 + math.exp(0.4))
    module = nn.Linear(1, 1).double()
    estimator = rp.ScoreFunction(Learned(module))
    grads = []
    for _ in range(4000):
        value = rp.expect(lambda b: b + 3.0, Bernoulli(logits=logit), estimator)
        grads.append(torch.autograd.grad(value, logit)[0])
    unbiased(torch.stack(grads), p * (1 - p))


def test_backward_trains_baseline_towards_expected_cost() -> None:
    # Features are the Bernoulli probs; the cost's expectation is 3 + p. After training on the
    # regression term carried by the surrogate, the baseline approaches E[f] at each p.
    torch.manual_seed(seeded(0))
    module = nn.Linear(1, 1)
    estimator = rp.ScoreFunction(Learned(module))
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(800):
        p = torch.rand(16)
        optimizer.zero_grad()
        value = rp.expect(lambda b: b + 3.0, Bernoulli(probs=p), estimator, num_samples=8)
        value.sum().backward()
        optimizer.step()
    # Least-squares fit of b + 3 on p has slope 1 and intercept 3 (E[b | p] = p).
    assert module.weight.item() == pytest.approx(1.0, abs=0.15)
    assert module.bias.item() == pytest.approx(3.0, abs=0.1)


def test_value_unchanged_by_baseline() -> None:
    q = Bernoulli(probs=torch.full((4,), 0.3))
    estimator = rp.ScoreFunction(Learned(nn.Linear(4, 1)))
    torch.manual_seed(seeded(2))
    value = rp.expect(lambda b: b.sum(-1), q, estimator, num_samples=5)
    torch.manual_seed(seeded(2))
    plain = rp.expect(lambda b: b.sum(-1), q, rp.ScoreFunction(), num_samples=5)
    assert torch.allclose(value, plain)


def test_wrong_output_shape_and_module_type() -> None:
    q = Bernoulli(probs=torch.full((4,), 0.3))
    with pytest.raises(ValueError, match="cost shape"):
        rp.expect(lambda b: b.sum(-1), q, rp.ScoreFunction(Learned(nn.Linear(4, 3))), num_samples=2)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        Learned(lambda x: x)  # type: ignore[arg-type]


def test_categorical_features_and_higher_order() -> None:
    # Categorical probs carry a category dim beyond the (empty) event: features are one row of
    # K probs per batch element (was an expand(...) error).
    logits = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    estimator = rp.ScoreFunction(Learned(nn.Linear(3, 1).double()))
    value = rp.expect(lambda z: z.double() ** 2, Categorical(logits=logits), estimator, num_samples=4)
    assert value.shape == (2,)
    (grad,) = torch.autograd.grad(value.sum(), logits)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0)])
def test_size_zero_batch(shape) -> None:
    # Before: "cannot reshape tensor of 0 elements" and a 0/0 regression loss.
    loc = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    module = nn.LazyLinear(1, dtype=torch.float64)
    estimator = rp.ScoreFunction(Learned(module))
    value = rp.expect(lambda z: z.sum(-1) if len(shape) == 2 else z, Normal(loc, 1.0), estimator, 3)
    assert value.shape == shape[:1]
    assert torch.isfinite(value.sum())
