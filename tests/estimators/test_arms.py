"""ARMS (Dimitriev & Zhou 2021): the copula, unbiasedness, variance below DisARM's at equal
evaluations of f, one call, extremes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.distributions import Bernoulli, OneHotCategorical

import reparam as rp
from reparam.estimators.arms import dirichlet_copula_joint, dirichlet_copula_uniforms
from reparam.problems.discrete import toy_cost


@pytest.mark.parametrize("n", [2, 3, 5])
def test_arms_is_unbiased_with_interactions(bernoulli_case, zscores, n: int) -> None:
    # The case's logits (0.3, -0.5, 1.0) put p on both sides of 1/2 (both orientations of the
    # copula). |z| < 5 per coordinate: two-sided false-alarm rate 5.7e-7 each.
    _, exact = bernoulli_case.exact_gradient()
    estimates = bernoulli_case.replicated_gradients(rp.ARMS(), n, 20000)
    assert zscores(estimates, exact).abs().max() < 5


def test_arms_is_unbiased_far_from_one_half(zscores) -> None:
    # p = 0.018 and 0.95: the joint probability C(m, m) is 0 for small m (debias = 1 - m) and
    # positive near 1/2; an interacting cost; |z| < 5 per coordinate (false-alarm 5.7e-7 each).
    w = torch.tensor([[0.0, 1.5], [1.5, 0.0]], dtype=torch.float64)

    def f(b: Tensor) -> Tensor:
        return torch.einsum("...i,ij,...j->...", b, w, b) + 2.0 * b[..., 0] - b[..., 1]

    base = torch.tensor([-4.0, 3.0], dtype=torch.float64)
    exact_logits = base.clone().requires_grad_(True)
    q = Bernoulli(logits=exact_logits)
    configs = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    (exact,) = torch.autograd.grad((q.log_prob(configs).sum(-1).exp() * f(configs)).sum(), exact_logits)
    logits = base.expand(20000, 2).clone().requires_grad_(True)
    value = rp.ARMS()(f, Bernoulli(logits=logits), 4)
    (estimates,) = torch.autograd.grad(value.sum(), logits)
    assert zscores(estimates, exact).abs().max() < 5


@pytest.mark.parametrize("n", [2, 3, 6])
def test_copula_marginals_are_uniform_and_joint_matches(n: int) -> None:
    like = torch.zeros(40000, dtype=torch.float64)
    u = dirichlet_copula_uniforms(n, like)
    assert u.shape == (n, 40000)
    # Kolmogorov-Smirnov on one marginal: sqrt(N) D < 1.95 has false-alarm rate 1e-3; use 2.5
    # (false-alarm rate 1e-5).
    x = u[0].sort().values
    grid = torch.arange(1, x.numel() + 1, dtype=x.dtype) / x.numel()
    assert math.sqrt(x.numel()) * float((grid - x).abs().max()) < 2.5
    # P(u_0 < m, u_1 < m) against the closed form; binomial z-test |z| < 5 (false-alarm 5.7e-7).
    for m in (0.1, 0.3, 0.5):
        hits = ((u[0] < m) & (u[1] < m)).double()
        expected = float(dirichlet_copula_joint(torch.tensor(m, dtype=torch.float64), n))
        se = math.sqrt(max(expected * (1 - expected), 1e-12) / hits.numel())
        assert abs(float(hits.mean()) - expected) < 5 * se + 1e-12
    if n == 2:  # the antithetic pair
        torch.testing.assert_close(u[0] + u[1], torch.ones_like(like))


def _toy_total_variance_terms(estimator: object, n: int, replicates: int) -> Tensor:
    """Per replicate ``||g_r - mean g||^2 / D`` on the Bernoulli toy (D = 200, t = 0.499,
    phi = 0): its mean is the per-coordinate variance averaged over coordinates."""
    logits = torch.zeros(replicates, 200, dtype=torch.float64, requires_grad=True)
    value = estimator(toy_cost(0.499), Bernoulli(logits=logits), n)  # type: ignore[operator]
    (g,) = torch.autograd.grad(value.sum(), logits)
    return (g - g.mean(0)).pow(2).mean(1)


def test_variance_at_most_disarms_at_equal_evaluations() -> None:
    # ARMS with n = 4 samples vs DisARM with 2 pairs: 4 evaluations of f each. Replicates are
    # independent, so the log ratio of the two means of s_r = ||g_r - g_bar||^2 / D has the
    # delta-method standard error sqrt(var(s1)/(R m1^2) + var(s2)/(R m2^2)). Measured: ratio
    # about 0.68 (ARMS ~4.1 c^2, DisARM ~6.1 c^2). Require log ratio < 5 SE (one-sided
    # false-alarm 2.9e-7 if they were equal) AND the ratio below 0.9 (the improvement is real).
    arms = _toy_total_variance_terms(rp.ARMS(), 4, 4000)
    disarm = _toy_total_variance_terms(rp.DisARM(), 2, 4000)
    log_ratio = math.log(float(arms.mean() / disarm.mean()))
    se = math.sqrt(
        float(arms.var() / (arms.numel() * arms.mean() ** 2))
        + float(disarm.var() / (disarm.numel() * disarm.mean() ** 2))
    )
    assert log_ratio < 5 * se
    assert log_ratio + 5 * se < math.log(0.9), (log_ratio, se)


def test_fewer_than_two_samples_is_refused() -> None:
    q = Bernoulli(logits=torch.zeros(3, requires_grad=True))
    with pytest.raises(ValueError, match="num_samples >= 2"):
        rp.ARMS()(lambda b: b.sum(-1), q, 1)


def test_extreme_logits_stay_finite() -> None:
    logits = torch.tensor([-200.0, -40.0, 0.0, 40.0, float("inf"), -float("inf")], requires_grad=True)
    value = rp.ARMS()(lambda b: (b - 0.3).pow(2).sum(-1), Bernoulli(logits=logits), 4)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[4] == 0 and logits.grad[5] == 0


def test_batched_costs_and_empty_batch() -> None:
    logits = torch.zeros(2, 3, requires_grad=True)
    value = rp.ARMS()(lambda b: b.sum(-1), Bernoulli(logits=logits), 3)
    assert value.shape == (2,)
    empty = torch.zeros(0, 3, requires_grad=True)
    out = rp.ARMS()(lambda b: b.sum(-1), Bernoulli(logits=empty), 3)
    assert out.shape == (0,)


def test_one_hot_is_refused() -> None:
    with pytest.raises(TypeError, match="supports q of type Bernoulli"):
        rp.ARMS()(lambda y: y.sum((-1, -2)), OneHotCategorical(logits=torch.zeros(2, 3)), 2)
