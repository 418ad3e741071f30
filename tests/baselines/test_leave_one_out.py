"""LeaveOneOut (RLOO): unbiased, and its closed-form variance on a two-sample Bernoulli."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

import reparam as rp
from reparam.baselines import LeaveOneOut


def test_baseline_is_mean_of_others() -> None:
    costs = torch.tensor([1.0, 2.0, 6.0])
    value = LeaveOneOut()(costs, costs, Normal(0.0, 1.0), lambda z: z).value
    assert torch.allclose(value, torch.tensor([4.0, 3.5, 1.5]))


def test_unbiased_normal(estimates, unbiased) -> None:
    mu, sigma = 0.5, 1.5
    estimator = rp.ScoreFunction(LeaveOneOut())
    grads = estimates(
        Normal, lambda z: (z - 2.0) ** 2 + 5.0, estimator, (mu, sigma), num_samples=4, repeats=20000
    )
    unbiased(grads[0], 2 * (mu - 2.0))
    unbiased(grads[1], 2 * sigma)


def test_two_sample_bernoulli_variance_closed_form(estimates) -> None:
    # One Bernoulli(p), f(b) = b, two samples: g = (f1 - f2)/2 (s1 - s2) with s = b - p (logit
    # score). The pair differs only when b1 != b2 (prob 2p(1-p)), then g = 1/2: E[g] = p(1-p)
    # and E[g^2] = 2 p (1 - p) / 4, so Var = p(1-p)/2 - p^2(1-p)^2. At p = 1/2: 1/8 - 1/16 = 1/16.
    (grad,) = estimates(
        lambda t: Bernoulli(logits=t),
        lambda b: b,
        rp.ScoreFunction(LeaveOneOut()),
        (0.0,),
        num_samples=2,
        repeats=40000,
    )
    # g takes values {0, 1/2}: variance of the sample variance is small; 5 SE ~ 0.0015.
    assert abs(grad.var().item() - 1 / 16) < 0.0015
    assert abs(grad.mean().item() - 0.25) < 5 * math.sqrt(1 / 16 / 40000)


def test_needs_two_samples() -> None:
    with pytest.raises(ValueError, match="num_samples >= 2"):
        LeaveOneOut()(torch.ones(1), torch.ones(1), Normal(0.0, 1.0), lambda z: z)
