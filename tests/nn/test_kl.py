"""kl_divergence(model): sums every Bayesian layer once, wherever it sits."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from reparam.nn import BayesConv2d, BayesLinear, NormalPrior, bayesian_modules, kl_divergence


def _closed_form(layer: BayesLinear | BayesConv2d, prior_scale: float) -> torch.Tensor:
    prior = Normal(0.0, prior_scale)
    kl = torch_kl(Normal(layer.weight_mu, layer.weight_sigma), prior).sum()
    return kl + torch_kl(Normal(layer.bias_mu, layer.bias_sigma), prior).sum()


def test_model_kl_is_the_sum_of_layer_kls() -> None:
    a = BayesLinear(4, 3, prior=NormalPrior(0.0, 0.5))
    b = BayesConv2d(1, 2, 3)
    shared = BayesLinear(3, 3)
    model = nn.Sequential(b, nn.Flatten(), nn.Sequential(nn.Identity(), a), shared, shared)
    expected = _closed_form(a, 0.5) + _closed_form(b, 1.0) + _closed_form(shared, 1.0)
    torch.testing.assert_close(kl_divergence(model), expected)
    assert len(bayesian_modules(model)) == 3  # the shared layer counts once


def test_kl_gradient_reaches_every_posterior_parameter() -> None:
    model = nn.Sequential(BayesLinear(3, 2), nn.ReLU(), BayesLinear(2, 1, bias=False))
    kl_divergence(model).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_model_without_bayesian_layers_is_an_error() -> None:
    with pytest.raises(ValueError, match="bayesianize"):
        kl_divergence(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="nn.Module"):
        kl_divergence("model")  # type: ignore[arg-type]
