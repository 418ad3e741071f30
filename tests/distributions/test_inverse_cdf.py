"""Inversion reparameterization: agreement with the explicit trick, open-interval noise, errors."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal

from reparam.distributions import InverseCDF
from reparam.distributions.inverse_cdf import open_uniform


def test_same_per_sample_gradient_as_normal_rsample_for_the_same_z() -> None:
    # icdf(u) = loc + scale * ndtri(u): at u = F(z), dz/dloc = 1 and dz/dscale = (z - loc)/scale.
    loc = torch.tensor([0.3, -1.2], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.7, 2.5], dtype=torch.float64, requires_grad=True)
    explicit = Normal(loc, scale).rsample((50,))
    inverted = InverseCDF(Normal(loc, scale)).reparameterize(explicit.detach())
    torch.testing.assert_close(inverted, explicit.detach(), rtol=1e-12, atol=1e-12)
    for param in (loc, scale):
        for i in range(3):
            want = torch.autograd.grad(explicit[i].sum(), param, retain_graph=True)[0]
            got = torch.autograd.grad(inverted[i].sum(), param, retain_graph=True)[0]
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_noise_stays_inside_the_open_interval() -> None:
    u = open_uniform(torch.Size((100000,)), torch.zeros((), dtype=torch.float32))
    assert bool((u > 0).all()) and bool((u < 1).all())
    z = InverseCDF(Normal(0.0, 1.0)).rsample((100000,))
    assert bool(torch.isfinite(z).all())


def test_missing_icdf_suggests_implicit() -> None:
    with pytest.raises(NotImplementedError, match=r"icdf\(\).*Implicit"):
        InverseCDF(torch.distributions.Gamma(2.0, 1.0))
