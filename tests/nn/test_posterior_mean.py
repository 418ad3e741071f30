"""Predicting with the posterior mean: eval() keeps sampling; use_mean / posterior_mean don't."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reparam.nn import ESTIMATORS, BayesConv2d, BayesLinear, posterior_mean, predict_samples


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_eval_samples_and_use_mean_is_the_mean_network(estimator: str) -> None:
    layer = BayesLinear(4, 3, estimator=estimator, init_scale=0.5).eval()  # type: ignore[arg-type]
    x = torch.randn(5, 4)
    assert not torch.equal(layer(x), layer(x))  # eval() still samples (Monte Carlo prediction)
    assert layer.use_mean(True) is layer and layer.posterior_mean
    expected = F.linear(x, layer.weight_mu, layer.bias_mu)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)
    layer.use_mean(False)
    assert not torch.equal(layer(x), expected)
    with pytest.raises(TypeError, match="True or False"):
        layer.use_mean(1)  # type: ignore[arg-type]


def test_context_manager_covers_every_layer_and_restores_the_settings() -> None:
    model = nn.Sequential(BayesConv2d(1, 2, 3), nn.Flatten(), BayesLinear(8, 2), BayesLinear(2, 2))
    model[3].use_mean(True)  # already on: stays on afterwards
    x = torch.randn(4, 1, 4, 4)
    with posterior_mean(model) as same:
        assert same is model
        draws = predict_samples(model, x, num_samples=3)
        assert torch.equal(draws[0], draws[1]) and torch.equal(draws[1], draws[2])
    assert [model[0].posterior_mean, model[2].posterior_mean, model[3].posterior_mean] == [False, False, True]
    draws = predict_samples(model, x, num_samples=2)
    assert not torch.equal(draws[0], draws[1])
    with pytest.raises(TypeError, match="nn.Module"), posterior_mean("model"):  # type: ignore[arg-type]
        pass


def test_factory_kwargs_like_nn_linear() -> None:
    layer = BayesLinear(3, 2, device="meta", dtype=torch.float64)
    assert {p.device.type for p in layer.parameters()} == {"meta"}
    assert {p.dtype for p in layer.parameters()} == {torch.float64}
    assert {b.dtype for b in layer.prior.buffers()} == {torch.float64}
    conv = BayesConv2d(1, 2, 3, dtype=torch.bfloat16)
    assert {p.dtype for p in conv.parameters()} == {torch.bfloat16}
