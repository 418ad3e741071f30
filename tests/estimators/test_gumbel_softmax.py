"""Gumbel-softmax / concrete relaxation: the bias it should have, finiteness, straight-through."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, OneHotCategorical

import reparam as rp


def _bias(temperature: float, n: int = 200_000) -> tuple[float, float, float, float]:
    """For b ~ Bernoulli(sigmoid(a)), a = 0.4, f(b) = (b - 0.2)^2, from n one-sample estimates:
    ``(value bias, its standard error, gradient bias, its standard error)``.

    Exact: E[f(b)] = 0.64 p + 0.04 (1 - p), dE/da = 0.6 p (1 - p), p = sigmoid(0.4)."""
    logits = torch.full((n,), 0.4, dtype=torch.float64, requires_grad=True)
    values = rp.GumbelSoftmax(temperature)(lambda y: (y - 0.2).pow(2), Bernoulli(logits=logits), 1)
    (grads,) = torch.autograd.grad(values.sum(), logits)
    p = torch.sigmoid(torch.tensor(0.4, dtype=torch.float64))
    values = values.detach()
    value_bias = abs(float(values.mean() - (0.64 * p + 0.04 * (1 - p))))
    grad_bias = abs(float(grads.mean() - 0.6 * p * (1 - p)))
    return value_bias, float(values.std()) / n**0.5, grad_bias, float(grads.std()) / n**0.5


def test_bias_shrinks_as_temperature_goes_to_zero() -> None:
    # The relaxed value y = sigmoid((a + L) / tau) tends to b = 1[a + L > 0] as tau -> 0, so
    # E[f(y)] -> E[f(b)] and, the relaxed expectation being smooth in a, so does its gradient.
    # Each comparison is made with a margin of 5 combined standard errors.
    v1, sv1, g1, sg1 = _bias(1.0)
    v2, sv2, g2, sg2 = _bias(0.3)
    v3, sv3, g3, sg3 = _bias(0.05)
    assert v1 > v2 + 5 * (sv1 + sv2) and v2 > v3 + 5 * (sv2 + sv3)
    # The gradient bias at tau = 0.3 and 0.05 (both ~2e-3, not separable from each other at this
    # n) is far below the one at tau = 1 (~3e-2) ...
    assert g2 + 5 * sg2 < g1 - 5 * sg1 and g3 + 5 * sg3 < g1 - 5 * sg1
    # ... while the spread of one estimate grows as tau shrinks (variance ~ 1 / tau).
    assert sg3 > 2 * sg2 > 4 * sg1
    assert v1 > 0.02 and g1 > 0.02  # really biased at tau = 1


@pytest.mark.parametrize("family", ["bernoulli", "categorical", "onehot"])
@pytest.mark.parametrize("straight_through", [False, True])
def test_tiny_temperatures_stay_finite(family: str, straight_through: bool) -> None:
    logits = torch.tensor([[30.0, -30.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    q = {
        "bernoulli": Bernoulli(logits=logits),
        "categorical": Categorical(logits=logits),
        "onehot": OneHotCategorical(logits=logits),
    }[family]
    est = rp.GumbelSoftmax(temperature=1e-8, straight_through=straight_through)
    value = est(lambda z: (torch.log(z + 1e-3) * z).flatten(1).sum(-1), q, 64)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("family", ["bernoulli", "categorical", "onehot"])
def test_straight_through_forward_is_exactly_discrete(family: str) -> None:
    logits = torch.randn(4, 3, requires_grad=True)
    q = {
        "bernoulli": Bernoulli(logits=logits),
        "categorical": Categorical(logits=logits),
        "onehot": OneHotCategorical(logits=logits),
    }[family]
    seen: list[torch.Tensor] = []

    def f(z: torch.Tensor) -> torch.Tensor:
        seen.append(z.detach().clone())
        return (z * 1.7).flatten(1).sum(-1)

    value = rp.GumbelSoftmax(0.5, straight_through=True)(f, q, 50)
    value.backward()
    z = seen[0]
    assert torch.equal(z, z.round()) and z.min() >= 0
    if family == "onehot":
        assert torch.equal(z.sum(-1), torch.ones_like(z.sum(-1)))
    if family == "categorical":
        assert z.max() <= 2
    assert logits.grad.abs().sum() > 0


def test_relaxed_values_lie_strictly_between_categories() -> None:
    seen: list[torch.Tensor] = []
    rp.GumbelSoftmax(1.0)(
        lambda y: seen.append(y) or y.sum((-1, -2)), OneHotCategorical(logits=torch.zeros(2, 3)), 8
    )
    y = seen[0]
    torch.testing.assert_close(y.sum(-1), torch.ones(8, 2))
    assert ((y > 0) & (y < 1)).all()


def test_bad_temperature_is_refused() -> None:
    with pytest.raises(ValueError, match="temperature must be > 0"):
        rp.GumbelSoftmax(0.0)
