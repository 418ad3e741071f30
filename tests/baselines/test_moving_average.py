"""MovingAverage: bias-corrected EMA, computed before the current step (so unbiased)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

import reparam as rp
from reparam.baselines import MovingAverage


def test_value_is_bias_corrected_ema_of_previous_steps() -> None:
    baseline = MovingAverage(decay=0.5)
    q = Normal(0.0, 1.0)
    first = baseline(torch.full((3,), 4.0), torch.zeros(3), q, lambda z: z)
    assert first.value.item() == 0.0
    second = baseline(torch.full((3,), 2.0), torch.zeros(3), q, lambda z: z)
    assert second.value.item() == pytest.approx(4.0)  # (0.5*4) / (1 - 0.5)
    # m = 0.5*(0.5*4) + 0.5*2 = 2; corrected by 1 - 0.25: 2.6667
    assert baseline.value == pytest.approx(2.0 / 0.75)


def test_unbiased_and_lower_variance_on_offset_bernoulli(unbiased) -> None:
    # f(b) = b + 10: plain REINFORCE carries the offset; after warm-up the baseline ~ E[f]
    # removes it. Exact d/dlogit = p (1 - p).
    logit = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    p = 1 / (1 + math.exp(-0.3))
    baseline = MovingAverage(0.9)
    estimator = rp.ScoreFunction(baseline)
    f = lambda b: b + 10.0  # noqa: E731
    for _ in range(50):  # warm up the average
        rp.expect(f, Bernoulli(logits=logit), estimator)
    with_baseline, plain = [], []
    for _ in range(3000):
        with_baseline.append(torch.autograd.grad(rp.expect(f, Bernoulli(logits=logit), estimator), logit)[0])
        plain.append(torch.autograd.grad(rp.expect(f, Bernoulli(logits=logit), rp.ScoreFunction()), logit)[0])
    with_baseline, plain = torch.stack(with_baseline), torch.stack(plain)
    unbiased(with_baseline, p * (1 - p))
    unbiased(plain, p * (1 - p))
    assert with_baseline.var() < plain.var() / 20


def test_rejects_bad_decay() -> None:
    with pytest.raises(ValueError, match="decay must be in"):
        MovingAverage(decay=1.0)


def test_size_zero_batch_keeps_the_average() -> None:
    # An empty batch has no mean cost (0/0 = nan would poison every later baseline).
    baseline = MovingAverage(decay=0.5)
    q = Normal(0.0, 1.0)
    baseline(torch.full((3,), 4.0), torch.zeros(3), q, lambda z: z)
    empty = baseline(torch.zeros(3, 0), torch.zeros(3, 0), Normal(torch.zeros(0), 1.0), lambda z: z)
    assert empty.value.item() == pytest.approx(4.0)
    assert baseline.value == pytest.approx(4.0) and baseline.steps == 1
