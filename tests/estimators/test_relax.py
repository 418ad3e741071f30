"""RELAX (Grathwohl et al. 2018): unbiased with a learned control; the control learns."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli

import reparam as rp
from reparam.estimators.relax import CoordinateMLP

# Unbiasedness z-test as in test_arm.py: |z| < 5 per coordinate (false-alarm rate < 6e-7).


def _random_control() -> nn.Module:
    # A non-trivial residual (last layer not zero), so the test exercises r_psi itself.
    control = CoordinateMLP(hidden=8).double()
    with torch.no_grad():
        for p in control.parameters():
            p.normal_(0.0, 1.0)
    return control


def test_unbiased_with_interactions(discrete_case, zscores) -> None:
    _, exact = discrete_case.exact_gradient()
    estimator = rp.RELAX(control=_random_control(), temperature=0.6).double()
    estimates = discrete_case.replicated_gradients(estimator, 1, 12000)
    assert zscores(estimates, exact).abs().max() < 5


def test_every_parameter_receives_a_variance_gradient() -> None:
    est = rp.RELAX(control=_random_control()).double()
    logits = torch.tensor([0.3, -0.5, 1.0], dtype=torch.float64, requires_grad=True)
    est(lambda b: (b - 0.45).pow(2).sum(-1), Bernoulli(logits=logits), 4).backward()
    for name, p in est.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert logits.grad is not None


def test_training_the_control_reduces_variance(bernoulli_case) -> None:
    # As for REBAR: 40 Adam steps (lr 0.1) on the estimator's parameters only, from eta = 0 and a zero
    # residual; the summed variance must drop by more than 30% (relative standard error of
    # each variance estimate with R = 3000: a few per cent).
    est = rp.RELAX(temperature=1.0, eta=0.0).double()
    before = bernoulli_case.replicated_gradients(est, 1, 3000).var(0).sum()
    opt = torch.optim.Adam(est.parameters(), lr=0.1)
    logits = bernoulli_case.logits.expand(64, 3)
    for _ in range(40):
        opt.zero_grad()
        est(bernoulli_case.f, Bernoulli(logits=logits), 1).sum().backward()
        opt.step()
    after = bernoulli_case.replicated_gradients(est, 1, 3000).var(0).sum()
    assert after < 0.7 * before


def test_control_must_be_a_module() -> None:
    with pytest.raises(TypeError, match="control must be None or a torch.nn.Module"):
        rp.RELAX(control=lambda z: z)  # type: ignore[arg-type]
