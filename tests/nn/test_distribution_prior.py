"""Priors given as torch.distributions objects: closed-form KL when torch registers one, Monte
Carlo with the layer's own weight sample otherwise; moved with the layer; clear errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Gamma, Independent, Laplace, MultivariateNormal, Normal, StudentT, Uniform
from torch.distributions import kl_divergence as torch_kl

from reparam.nn import BayesLinear, DistributionPrior, NormalPrior, as_prior, bayesianize

F64 = torch.float64


def _layer(prior: object, estimator: str = "reparam", bias: bool = True) -> BayesLinear:
    layer = BayesLinear(6, 5, bias=bias, estimator=estimator, prior=prior, dtype=F64)  # type: ignore[arg-type]
    with torch.no_grad():
        layer.weight_mu.normal_(0.0, 0.5)
        layer.weight_rho.uniform_(-2.0, 0.5)
        if layer.bias_mu is not None and layer.bias_rho is not None:
            layer.bias_mu.normal_(0.0, 0.5)
            layer.bias_rho.uniform_(-2.0, 0.5)
    return layer


def _exact(layer: BayesLinear, prior: Normal) -> torch.Tensor:
    kl = torch_kl(Normal(layer.weight_mu, layer.weight_sigma), prior).sum()
    assert layer.bias_mu is not None and layer.bias_sigma is not None
    return kl + torch_kl(Normal(layer.bias_mu, layer.bias_sigma), prior).sum()


def test_registered_pair_gives_the_closed_form() -> None:
    prior = Normal(torch.tensor(0.3, dtype=F64), torch.tensor(2.0, dtype=F64))
    layer = _layer(prior)
    assert isinstance(layer.prior, DistributionPrior) and layer.prior.analytic
    torch.testing.assert_close(layer.kl_divergence(), _exact(layer, prior))
    # a Normal given as a torch distribution and as NormalPrior agree exactly
    twin = _layer(NormalPrior(0.3, 2.0))
    twin.load_state_dict(layer.state_dict(), strict=False)
    torch.testing.assert_close(twin.kl_divergence(), _exact(layer, prior))


@pytest.mark.parametrize("estimator", ["reparam", "flipout", "local"])
def test_monte_carlo_kl_is_unbiased_against_the_closed_form(estimator: str) -> None:
    # The same (Normal, Normal) pair forced onto the Monte Carlo path: R estimates, each after its
    # own forward pass (reparam / flipout: the forward's weight sample; local: a fresh draw).
    # |mean - exact| < 5 standard errors: two-sided false-alarm rate 5.7e-7 per test.
    prior = Normal(torch.tensor(0.3, dtype=F64), torch.tensor(2.0, dtype=F64))
    layer = _layer(DistributionPrior(prior, kl="mc"), estimator)
    x = torch.randn(3, 6, dtype=F64)
    draws = []
    for _ in range(1500):
        layer(x)
        draws.append(layer.kl_divergence().detach())
    values = torch.stack(draws)
    exact = float(_exact(layer, prior).detach())
    standard_error = float(values.std()) / math.sqrt(len(values))
    assert standard_error > 0
    assert abs(float(values.mean()) - exact) < 5 * standard_error


def test_monte_carlo_kl_uses_the_forward_pass_sample_once() -> None:
    # Input = identity and no bias, so the output is the sampled weight matrix transposed: the
    # KL must be -H[q] - log p(W) at exactly that W.
    prior = StudentT(torch.tensor(3.0, dtype=F64), torch.tensor(0.0, dtype=F64), torch.tensor(0.5, dtype=F64))
    layer = _layer(prior, "reparam", bias=False)
    assert not layer.prior.analytic  # type: ignore[union-attr]
    weight = layer(torch.eye(6, dtype=F64)).T
    entropy = Normal(layer.weight_mu, layer.weight_sigma).entropy().sum()
    expected = -prior.log_prob(weight).sum() - entropy
    torch.testing.assert_close(layer.kl_divergence(), expected)
    # consumed: a second call draws afresh (a different value, almost surely)
    assert not torch.equal(layer.kl_divergence(), expected)
    # stale after an optimizer step: never the old sample (whose graph is gone)
    layer(torch.eye(6, dtype=F64))
    with torch.no_grad():
        layer.weight_mu.add_(0.1)
    layer.kl_divergence().backward()
    assert layer.weight_mu.grad is not None


def test_the_prior_moves_with_the_layer() -> None:
    layer = BayesLinear(3, 2, prior=Laplace(torch.tensor(0.0), torch.tensor(0.5)))
    layer.double()
    assert isinstance(layer.prior, DistributionPrior)
    assert layer.prior.distribution.loc.dtype == F64 and layer.prior.distribution.scale.dtype == F64
    meta = BayesLinear(3, 2, prior=Laplace(0.0, 0.5), device="meta", dtype=F64)
    assert meta.prior.distribution.scale.device.type == "meta"  # type: ignore[union-attr]
    # bayesianize deep-copies a distribution prior per layer
    network = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model = bayesianize(network, prior=Laplace(0.0, 1.0))
    assert model[0].prior is not model[1].prior


def test_bad_priors_name_the_fix() -> None:
    with pytest.raises(ValueError, match="real line"):
        DistributionPrior(Gamma(2.0, 1.0))
    with pytest.raises(ValueError, match="real line"):
        DistributionPrior(Uniform(-1.0, 1.0))
    with pytest.raises(ValueError, match="event_shape"):
        DistributionPrior(MultivariateNormal(torch.zeros(2), torch.eye(2)))
    with pytest.raises(ValueError, match="no closed-form KL"):
        DistributionPrior(StudentT(3.0), kl="analytic")
    with pytest.raises(ValueError, match="kl must be"):
        DistributionPrior(Normal(0.0, 1.0), kl="exact")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="torch.distributions"):
        as_prior("normal")  # type: ignore[arg-type]
    layer = BayesLinear(3, 2, prior=Laplace(torch.zeros(2, 3), 1.0))
    with pytest.raises(ValueError, match="does not broadcast"):
        layer.kl_divergence()  # the (2, 3) prior fits the weight but not the bias (2,)
    assert isinstance(as_prior(Independent(Normal(0.0, torch.ones(1)), 0)), DistributionPrior)
