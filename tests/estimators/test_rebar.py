"""REBAR (Tucker et al. 2017): unbiased; temperature and eta get the variance gradient."""

from __future__ import annotations

import torch
from seeds import seeded
from torch.distributions import Bernoulli

import reparam as rp

# Unbiasedness z-test as in test_arm.py: |z| < 5 per coordinate (false-alarm rate < 6e-7).


def test_unbiased_with_interactions(discrete_case, zscores) -> None:
    _, exact = discrete_case.exact_gradient()
    estimator = rp.REBAR(temperature=0.7, eta=0.8).double()
    estimates = discrete_case.replicated_gradients(estimator, 1, 12000)
    assert zscores(estimates, exact).abs().max() < 5


def test_parameters_receive_the_variance_gradient_whatever_the_loss_sign() -> None:
    # The control parameters get d sum(g^2)/d psi, which must not depend on how the user scales
    # or negates the surrogate: compare the same draw (same seed) under loss = s and -3 s.
    logits = torch.tensor([0.3, -0.5, 1.0], requires_grad=True)
    grads = []
    for scale in (1.0, -3.0):
        est = rp.REBAR()
        torch.manual_seed(seeded(1))
        (scale * est(lambda b: (b - 0.45).pow(2).sum(-1), Bernoulli(logits=logits), 4)).backward()
        grads.append((est.log_temperature.grad.clone(), est.eta.grad.clone()))
        assert grads[-1][0] != 0 and grads[-1][1] != 0
    torch.testing.assert_close(grads[0], grads[1])


def test_adapting_eta_and_temperature_reduces_variance(bernoulli_case) -> None:
    # Start from eta = 0 (plain REINFORCE) and take 40 Adam steps (lr 0.1) on the estimator's own
    # parameters only. The summed variance of the logit gradient must drop by more than 30%;
    # with R = 3000 replicates each variance estimate has a relative standard error of a few
    # per cent, so a 30% drop cannot come from noise.
    est = rp.REBAR(temperature=1.0, eta=0.0).double()
    before = bernoulli_case.replicated_gradients(est, 1, 3000).var(0).sum()
    opt = torch.optim.Adam(est.parameters(), lr=0.1)
    logits = bernoulli_case.logits.expand(64, 3)
    for _ in range(40):
        opt.zero_grad()
        est(bernoulli_case.f, Bernoulli(logits=logits), 1).sum().backward()
        opt.step()
    after = bernoulli_case.replicated_gradients(est, 1, 3000).var(0).sum()
    assert after < 0.7 * before
    assert float(est.eta.detach()) > 0.2


def test_three_evaluations_in_one_call() -> None:
    rows: list[int] = []

    def f(b: torch.Tensor) -> torch.Tensor:
        rows.append(b.shape[0])
        return b.sum(-1)

    q = Bernoulli(logits=torch.zeros(3, requires_grad=True))
    rp.REBAR()(f, q, 2)
    assert rows == [6] and rp.REBAR().evaluations(q, 2) == 6
