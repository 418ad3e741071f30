"""ARM (Yin & Zhou 2019): unbiasedness against enumeration, one call of f per estimate, cost."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, Categorical

import reparam as rp

# Unbiasedness: R independent estimates (replicated q, see conftest); the z-score
# (mean - exact) / (sd / sqrt(R)) is approximately N(0, 1) per coordinate for an unbiased
# estimator, so |z| < 5 fails by chance with probability < 6e-7 per coordinate; a bias of
# 5 standard errors (with R = 20000 about 0.025, i.e. ~5% of gradients of order 0.5) is detected.


@pytest.mark.parametrize("pairs", [1, 3])
def test_arm_is_unbiased_with_interactions(bernoulli_case, zscores, pairs: int) -> None:
    _, exact = bernoulli_case.exact_gradient()
    estimates = bernoulli_case.replicated_gradients(rp.ARM(), pairs, 20000)
    assert zscores(estimates, exact).abs().max() < 5


def test_value_is_unbiased_estimate_of_expectation(bernoulli_case, zscores) -> None:
    expected, _ = bernoulli_case.exact_gradient()
    logits = bernoulli_case.logits.expand(4000, 3)
    values = rp.ARM()(bernoulli_case.f, Bernoulli(logits=logits), 1)
    assert zscores(values.detach().unsqueeze(-1), expected.unsqueeze(0)).abs().max() < 5


def test_pair_is_evaluated_in_one_call_of_f() -> None:
    calls: list[tuple[int, ...]] = []

    def f(b: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(b.shape))
        return (b - 0.4).pow(2).sum(-1)

    q = Bernoulli(logits=torch.zeros(5, requires_grad=True))
    rp.ARM()(f, q, 4)
    assert calls == [(8, 5)]
    assert rp.ARM().evaluations(q, 4) == 8
    assert rp.evaluations(rp.ARM(), q, 4) == 8


def test_the_two_halves_are_antithetic_bernoulli_samples() -> None:
    # b1 = 1[u > sigma(-a)] and b2 = 1[u < sigma(a)]: both Bernoulli(sigma(a)); at a = 0 they
    # are exact complements.
    seen: list[torch.Tensor] = []

    def f(b: torch.Tensor) -> torch.Tensor:
        seen.append(b)
        return b.sum(-1)

    rp.ARM()(f, Bernoulli(logits=torch.zeros(1000)), 1)
    b1, b2 = seen[0][0], seen[0][1]
    assert torch.equal(b1 + b2, torch.ones(1000))


def test_categorical_is_refused_with_advice() -> None:
    q = Categorical(logits=torch.zeros(2, 3))
    with pytest.raises(TypeError, match="IndeCateR"):
        rp.ARM()(lambda z: z.float().sum(-1), q, 1)


def test_expect_accepts_arm() -> None:
    logits = torch.zeros(4, requires_grad=True)
    value = rp.expect(lambda b: b.sum(-1), Bernoulli(logits=logits), rp.ARM(), 2)
    value.backward()
    assert value.shape == () and logits.grad is not None and torch.isfinite(logits.grad).all()
