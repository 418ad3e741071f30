"""DisARM (Dong, Mnih & Tucker 2020): unbiasedness, variance no larger than ARM's, one call."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, OneHotCategorical

import reparam as rp

# Unbiasedness z-test as in test_arm.py: |z| < 5 per coordinate (false-alarm rate < 6e-7).


@pytest.mark.parametrize("pairs", [1, 3])
def test_disarm_is_unbiased_with_interactions(bernoulli_case, zscores, pairs: int) -> None:
    _, exact = bernoulli_case.exact_gradient()
    estimates = bernoulli_case.replicated_gradients(rp.DisARM(), pairs, 20000)
    assert zscores(estimates, exact).abs().max() < 5


def test_variance_is_at_most_arms(bernoulli_case) -> None:
    # DisARM is E[ARM | b, b~] (Rao-Blackwell), so Var(DisARM) <= Var(ARM) per coordinate. With
    # R = 8000 the relative standard error of each variance estimate is about
    # sqrt((kurtosis - 1) / R) < 5% for these bounded estimates; require DisARM's summed
    # variance to be below ARM's times 1.1 (a slack of two standard errors).
    arm = bernoulli_case.replicated_gradients(rp.ARM(), 1, 8000).var(0).sum()
    disarm = bernoulli_case.replicated_gradients(rp.DisARM(), 1, 8000).var(0).sum()
    assert disarm < 1.1 * arm


def test_extreme_logits_stay_finite() -> None:
    logits = torch.tensor([-40.0, 0.0, 40.0], requires_grad=True)
    value = rp.DisARM()(lambda b: (b - 0.3).pow(2).sum(-1), Bernoulli(logits=logits), 4)
    value.backward()
    assert torch.isfinite(logits.grad).all()


def test_one_hot_is_refused() -> None:
    with pytest.raises(TypeError, match="supports q of type Bernoulli"):
        rp.DisARM()(lambda y: y.sum((-1, -2)), OneHotCategorical(logits=torch.zeros(2, 3)), 1)
