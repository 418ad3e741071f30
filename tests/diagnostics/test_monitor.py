"""GradientVarianceMonitor: exponentially weighted gradient mean and variance."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import reparam as rp


def test_recovers_mean_and_variance_of_iid_gradients() -> None:
    # Gradients g_t ~ N(1.5, 2^2) i.i.d. in 200 coordinates, decay 0.999 over 4000 steps. The
    # weighted estimates average about (2 - a) / a = 1999 steps (a = 1 - decay), so per
    # coordinate sd(mean) ~ 2 / sqrt(1999) = 0.045 and sd(variance) ~ 4 sqrt(2 / 1999) = 0.13;
    # averaged over 200 coordinates these shrink by sqrt(200): tolerances 5x those.
    p = torch.zeros(200, requires_grad=True)
    monitor = rp.GradientVarianceMonitor([p], decay=0.999)
    for _ in range(4000):
        p.grad = 1.5 + 2.0 * torch.randn(200)
        monitor.update()
    s = monitor.summary()["p0"]
    assert s.steps == 4000
    assert abs(float(s.mean.mean()) - 1.5) < 5 * 0.045 / math.sqrt(200)
    assert abs(float(s.variance.mean()) - 4.0) < 5 * 0.13 / math.sqrt(200) + 0.01
    assert abs(s.mean_snr - 0.75) < 0.05


def test_module_names_constant_gradient_and_markdown() -> None:
    model = nn.Linear(2, 1)
    monitor = rp.GradientVarianceMonitor(model, decay=0.9)
    for _ in range(5):
        model.zero_grad()
        model.weight.grad = torch.ones_like(model.weight)
        monitor.update()  # bias has no grad: left out
    summary = monitor.summary()
    assert set(summary) == {"weight"}
    assert float(summary["weight"].variance.abs().max()) == 0.0
    assert math.isinf(summary["weight"].norm_snr)
    assert "| weight | 5 |" in monitor.to_markdown()
    monitor.reset()
    assert monitor.summary() == {}


def test_errors() -> None:
    with pytest.raises(ValueError, match="decay"):
        rp.GradientVarianceMonitor([torch.zeros(1, requires_grad=True)], decay=1.0)
    with pytest.raises(TypeError, match="params"):
        rp.GradientVarianceMonitor([])
    p = torch.zeros(2, requires_grad=True)
    monitor = rp.GradientVarianceMonitor([p])
    p.grad = torch.tensor([1.0, float("nan")])
    with pytest.raises(FloatingPointError, match="p0"):
        monitor.update()
