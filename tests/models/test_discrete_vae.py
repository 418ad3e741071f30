"""Bernoulli-latent VAE: architectures, every estimator plugs in, unbiased ELBO gradients,
the importance-weighted bound, and the encoder-gradient variance ordering."""

from __future__ import annotations

import math

import pytest
import torch
from seeds import seeded
from torch.distributions import Bernoulli

import reparam as rp
from reparam.estimators.registry import ESTIMATORS, make_estimator
from reparam.models.discrete_vae import DiscreteVAE, DiscreteVAEConfig, encoder_gradient_variance


def tiny(arch: str = "linear", latent: int = 3, data_dim: int = 6) -> DiscreteVAE:
    torch.manual_seed(seeded(0))
    return DiscreteVAE(DiscreteVAEConfig(arch=arch, latent=latent, hidden=5, data_dim=data_dim)).double()


def data(rows: int = 2, dim: int = 6) -> torch.Tensor:
    return torch.bernoulli(
        torch.full((rows, dim), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(seeded(1))
    )


def test_architectures_match_the_papers() -> None:
    linear = DiscreteVAE(DiscreteVAEConfig("linear"))
    assert [tuple(p.shape) for p in linear.encoder.parameters()] == [(200, 784), (200,)]
    assert [tuple(p.shape) for p in linear.decoder.parameters()] == [(784, 200), (784,)]
    nonlinear = DiscreteVAE(DiscreteVAEConfig("nonlinear"))
    enc = [tuple(p.shape) for p in nonlinear.encoder.parameters()][::2]
    dec = [tuple(p.shape) for p in nonlinear.decoder.parameters()][::2]
    assert enc == [(200, 784), (200, 200), (200, 200)] and dec == [(200, 200), (200, 200), (784, 200)]
    with pytest.raises(ValueError, match="arch must be one of"):
        DiscreteVAEConfig("deep").validate()


DISCRETE = ["reinforce", "reinforce-loo", "arm", "disarm", "gumbel-softmax", "gumbel-st", "straight-through"]
DISCRETE += ["rebar", "relax", "indecater", "vimco"]


@pytest.mark.parametrize("name", DISCRETE)
def test_every_discrete_estimator_trains_the_model(name: str) -> None:
    model = tiny("nonlinear")
    estimator = make_estimator(name)
    if isinstance(estimator, torch.nn.Module):
        estimator = estimator.double()
    loss, bound = model.loss(data(), estimator, 2)
    loss.backward()
    assert bound.shape == (2,) and torch.isfinite(loss)
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_exact_is_refused_for_200_latents() -> None:
    assert "exact" in ESTIMATORS
    model = DiscreteVAE()
    with pytest.raises(ValueError, match="max_support"):
        model.loss(torch.zeros(2, 784), rp.Exact(), 1)


def _logit_gradients(model: DiscreteVAE, x: torch.Tensor, estimator: object, n: int) -> torch.Tensor:
    """Gradient of the batch loss w.r.t. each row's posterior logits, times the batch size (so
    each row is the gradient of that data point's negative ELBO). The encoder's gradient is a
    fixed linear map (the chain rule) of these, so their unbiasedness implies its."""
    logits = model.encoder(x - model.input_mean).detach().requires_grad_(True)
    loss, _ = model.loss_given_posterior(x, Bernoulli(logits=logits), estimator, n)  # type: ignore[arg-type]
    (grad,) = torch.autograd.grad(loss, logits)
    return grad * x.shape[0]


@pytest.mark.parametrize("name", ["disarm", "reinforce-loo", "rebar"])
def test_elbo_gradient_is_unbiased_against_enumeration(name: str) -> None:
    # 2 data points x 3 latents: Exact enumerates the 2**6 joint configurations, giving the
    # exact gradient. R = 3000 independent estimates at once by repeating the batch (each row's
    # cost depends only on its own latents); z-test per logit: |z| < 5.
    model, x = tiny(), data()
    exact = _logit_gradients(model, x, rp.Exact(), 1)
    estimator = make_estimator(name)
    if isinstance(estimator, torch.nn.Module):
        estimator = estimator.double()
    r = 3000
    draws = _logit_gradients(model, x.repeat(r, 1), estimator, 2).reshape(r, *exact.shape)
    se = draws.std(0) / r**0.5
    assert bool((se > 0).all())
    assert ((draws.mean(0) - exact) / se).abs().max() < 5


def test_importance_bound_approaches_log_marginal() -> None:
    # log p(x) = logsumexp_b log p(x, b) over the 2**3 latent configurations. The k-sample
    # bound is below it in expectation and within ~0.02 nats for k = 4000 (its bias is about
    # Var(w) / (2 k p(x)^2), tiny here); a single draw per row, so allow 0.05.
    model, x = tiny(), data()
    configs = torch.tensor([[(m >> i) & 1 for i in range(3)] for m in range(8)], dtype=torch.float64)
    log_joint = model.log_joint(x, configs.unsqueeze(1).expand(8, 2, 3))
    log_px = torch.logsumexp(log_joint, 0)
    bound = model.importance_bound(x, k=4000)
    assert ((bound - log_px).abs() < 0.05).all()
    assert (model.elbo(x, 2000) < log_px).all()


def test_vimco_optimises_the_multi_sample_bound() -> None:
    model, x = tiny(), data()
    torch.manual_seed(seeded(3))
    _, bound = model.loss(x, rp.VIMCO(), 5)
    torch.manual_seed(seeded(3))
    q = model.posterior(x)
    b = q.sample((5,))
    log_w = model.log_joint(x, b) - q.log_prob(b).sum(-1)
    torch.testing.assert_close(bound, torch.logsumexp(log_w, 0) - math.log(5))


def test_disarm_has_far_lower_encoder_variance_than_reinforce() -> None:
    # The papers' ordering on the real model: REINFORCE's encoder-gradient variance is orders of
    # magnitude above DisARM's (here > 10x with 30 draws each; the relative error of each
    # variance estimate is ~ sqrt(2/30) ~ 26%).
    torch.manual_seed(seeded(0))
    model = DiscreteVAE(DiscreteVAEConfig("linear", latent=20, data_dim=30))
    x = torch.bernoulli(torch.full((10, 30), 0.3))
    reinforce = encoder_gradient_variance(model, x, rp.ScoreFunction(), 1, 30)
    disarm = encoder_gradient_variance(model, x, rp.DisARM(), 1, 30)
    assert disarm * 10 < reinforce
