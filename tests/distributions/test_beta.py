"""Beta through two log-space gammas: tiny concentrations stay finite and correctly distributed."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from reparam.distributions import Beta


def test_tiny_concentrations_put_mass_at_both_ends_as_scipy_says() -> None:
    # Beta(1e-4, 1e-4): almost all mass within 1e-16 of 0 or 1. Check P(X <= t) at several t
    # (binomial counts within 5 standard errors) and that gradients stay finite.
    a = torch.tensor(1e-4, dtype=torch.float64, requires_grad=True)
    n = 20000
    x = Beta(a, a).rsample((n,))
    (grad,) = torch.autograd.grad(x.sum(), a)
    assert math.isfinite(float(grad))
    values = x.detach().numpy()
    assert bool(((values > 0) & (values < 1)).all())
    for t in (1e-300, 1e-100, 1e-10, 0.5, 1 - 1e-10):
        p = stats.beta(1e-4, 1e-4).cdf(t)
        count = (values <= t).sum()
        assert abs(count - n * p) < 5 * np.sqrt(n * p * (1 - p)), (t, count, n * p)


def test_float32_extremes_finite() -> None:
    for a_val, b_val in ((1e-4, 1e4), (1e4, 1e-4), (1e-3, 1e-3), (1e3, 1e3)):
        a = torch.tensor(a_val, requires_grad=True)
        b = torch.tensor(b_val, requires_grad=True)
        x = Beta(a, b).rsample((1000,))
        assert x.dtype == torch.float32 and bool(torch.isfinite(x).all())
        assert all(bool(torch.isfinite(g)) for g in torch.autograd.grad(x.sum(), (a, b)))
