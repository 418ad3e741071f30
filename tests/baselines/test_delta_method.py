"""DeltaMethod control variate: exact for quadratics, unbiased for other f, helps REINFORCE."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import (
    Categorical,
    Cauchy,
    Dirichlet,
    Independent,
    InverseGamma,
    LowRankMultivariateNormal,
    Multinomial,
    MultivariateNormal,
    Normal,
    OneHotCategorical,
    StudentT,
)

import reparam as rp
from reparam.baselines import DeltaMethod


def test_zero_variance_for_quadratic_cost() -> None:
    # For a quadratic f the Taylor expansion is f itself: beta = 1 and the score term vanishes,
    # leaving the exact gradient of E[h] = E[f]: d/dmu E[(z - 2)^2] = 2 (mu - 2).
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    q = Independent(Normal(mu, torch.tensor([1.0, 0.5], dtype=torch.float64)), 1)
    value = rp.expect(lambda z: ((z - 2.0) ** 2).sum(-1), q, rp.ScoreFunction(DeltaMethod()), num_samples=8)
    (grad,) = torch.autograd.grad(value, mu)
    assert torch.allclose(grad, 2 * (mu.detach() - 2.0))


def test_unbiased_for_non_quadratic_and_reduces_variance(unbiased) -> None:
    # E[cos z] under N(mu, sigma^2) = cos(mu) exp(-sigma^2 / 2): d/dmu = -sin(mu) e, d/dsigma =
    # -sigma cos(mu) e. At sigma = 0.3 the quadratic expansion is close to f, so the control
    # variate removes most of the variance (we measured a ~500x reduction; asserting 20x leaves
    # room for the sampling error of 600 draws, whose variance estimates are good to ~10%).
    mu = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    delta, plain = [], []
    for _ in range(600):
        q = Normal(mu, sigma)
        for estimator, out in ((rp.ScoreFunction(DeltaMethod()), delta), (rp.ScoreFunction(), plain)):
            out.append(
                torch.stack(
                    torch.autograd.grad(rp.expect(torch.cos, q, estimator, num_samples=10), (mu, sigma))
                )
            )
    delta, plain = torch.stack(delta), torch.stack(plain)
    e = math.exp(-0.045)
    unbiased(delta[:, 0], -math.sin(0.3) * e)
    unbiased(delta[:, 1], -0.3 * math.cos(0.3) * e)
    assert (delta.var(0) < plain.var(0) / 20).all()


def test_full_covariance_uses_trace_with_hessian() -> None:
    # f(z) = z0 * z1 under a correlated Gaussian: E[f] = mu0 mu1 + Sigma01. The control variate
    # is exact (f is quadratic), so the gradient wrt the Cholesky factor equals the exact one.
    loc = torch.tensor([0.5, 1.0], dtype=torch.float64, requires_grad=True)
    tril = torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=torch.float64, requires_grad=True)
    q = MultivariateNormal(loc, scale_tril=tril)
    value = rp.expect(lambda z: z[..., 0] * z[..., 1], q, rp.ScoreFunction(DeltaMethod()), num_samples=6)
    grads = torch.autograd.grad(value, (loc, tril))
    exact_value = loc[0] * loc[1] + (tril @ tril.T)[0, 1]
    exact = torch.autograd.grad(exact_value, (loc, tril))
    for g, e in zip(grads, exact, strict=True):
        assert torch.allclose(g, e)


def test_per_element_costs_each_get_their_own_expansion() -> None:
    # Costs per batch element: element e's expansion uses only its own slice. For quadratic
    # costs every expansion is exact, so the gradient is exact: d/dmu_e E[z_e^2 + z_e] = 2 mu_e + 1.
    mu = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    q = Normal(mu, torch.tensor([1.0, 0.3, 2.0], dtype=torch.float64))
    value = rp.expect(lambda z: z**2 + z, q, rp.ScoreFunction(DeltaMethod()), num_samples=4)
    assert value.shape == (3,)
    (grad,) = torch.autograd.grad(value.sum(), mu)
    assert torch.allclose(grad, 2 * mu.detach() + 1)


def test_batch_of_multivariate_normals() -> None:
    # Two independent correlated Gaussians (batch 2, event 2), cost z0 * z1 per element:
    # E = mu0 mu1 + Sigma01 per element, exact under the (exact) quadratic expansion.
    loc = torch.tensor([[0.5, 1.0], [-1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    tril = torch.tensor(
        [[[1.0, 0.0], [0.6, 0.8]], [[0.5, 0.0], [-0.2, 1.5]]], dtype=torch.float64, requires_grad=True
    )
    q = MultivariateNormal(loc, scale_tril=tril)
    value = rp.expect(lambda z: z[..., 0] * z[..., 1], q, rp.ScoreFunction(DeltaMethod()), num_samples=5)
    grads = torch.autograd.grad(value.sum(), (loc, tril))
    cov = tril @ tril.transpose(-1, -2)
    exact = torch.autograd.grad((loc[:, 0] * loc[:, 1] + cov[:, 0, 1]).sum(), (loc, tril))
    for g, e in zip(grads, exact, strict=True):
        assert torch.allclose(g, e)


@pytest.mark.parametrize("family", ["low_rank", "independent_mvn", "onehot", "dirichlet", "multinomial"])
def test_event_covariance_of_multivariate_families(family: str) -> None:
    # f(z) = (a . z)^2 is quadratic, so the expansion is exact and the gradient is exactly that
    # of E[f] = (a . mean)^2 + a^T Sigma a: only right if the off-diagonal covariance is used
    # (with the diagonal alone the gradient was off for all five families).
    a = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    raw = torch.tensor([0.3, -0.2, 0.9], dtype=torch.float64, requires_grad=True)

    def build(raw: torch.Tensor):
        if family == "low_rank":
            factor = torch.tensor([[1.0], [0.5], [-0.7]], dtype=torch.float64)
            return LowRankMultivariateNormal(raw, factor * raw.exp().unsqueeze(-1), raw.exp())
        if family == "independent_mvn":
            tril = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-0.3, 0.2, 0.5]], dtype=torch.float64)
            scale_tril = tril * raw.exp().unsqueeze(-1)
            return Independent(MultivariateNormal(raw.expand(2, 3), scale_tril=scale_tril), 1)
        if family == "onehot":
            return OneHotCategorical(logits=raw)
        if family == "dirichlet":
            return Dirichlet(raw.exp() * 3)
        return Multinomial(5, logits=raw)

    def f(z: torch.Tensor) -> torch.Tensor:
        costs = (z.to(a.dtype) * a).sum(-1) ** 2
        return costs.sum(-1) if family == "independent_mvn" else costs

    value = rp.expect(f, build(raw), rp.ScoreFunction(DeltaMethod()), num_samples=6)
    (grad,) = torch.autograd.grad(value, raw)
    q = build(raw)
    base = q.base_dist if isinstance(q, Independent) else q
    if family in ("onehot", "multinomial"):
        p = base.probs
        cov = (5 if family == "multinomial" else 1) * (torch.diag(p) - torch.outer(p, p))
    elif family == "dirichlet":
        c = base.concentration
        m = c / c.sum()
        cov = (torch.diag(m) - torch.outer(m, m)) / (c.sum() + 1)
    else:
        cov = base.covariance_matrix
    exact_value = ((base.mean @ a) ** 2 + a @ cov @ a).sum()
    (exact,) = torch.autograd.grad(exact_value, raw)
    # Deterministic (beta = 1, the score term is rounding noise): float64 tolerance.
    torch.testing.assert_close(grad, exact, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    ("q", "match"),
    [
        (lambda: Categorical(logits=torch.zeros(3)), "Categorical: its outcomes are category labels"),
        (lambda: Cauchy(torch.zeros(2), 1.0), "Cauchy: it has no mean"),
        (lambda: InverseGamma(torch.tensor(1.5), 1.0), "variance of InverseGamma is infinite"),
        (lambda: InverseGamma(torch.tensor(0.5), 1.0), "mean of InverseGamma is infinite"),
        (lambda: StudentT(torch.tensor(0.8)), "mean of StudentT is undefined"),
        (lambda: StudentT(torch.tensor(1.5)), "variance of StudentT is infinite"),
    ],
)
def test_refuses_missing_moments(q, match: str) -> None:
    # Before: NaN values and gradients, silently.
    with pytest.raises(ValueError, match=match) as info:
        rp.expect(lambda z: z.float(), q(), rp.ScoreFunction(DeltaMethod()), num_samples=4)
    assert "LeaveOneOut()" in str(info.value)


def test_finite_moments_of_heavy_tailed_families_pass() -> None:
    q = InverseGamma(torch.tensor(3.0, dtype=torch.float64), 1.0)
    value = rp.expect(lambda z: z, q, rp.ScoreFunction(DeltaMethod()), num_samples=4)
    assert torch.isfinite(value)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 2)])
def test_size_zero_batch_gives_empty_result(shape) -> None:
    # Before: ZeroDivisionError / IndexError from inside the expansion.
    loc = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    q = Normal(loc, 1.0)
    value = rp.expect(lambda z: z.sum(-1) if len(shape) == 2 else z, q, rp.ScoreFunction(DeltaMethod()), 3)
    assert value.shape == shape[:1]
    (grad,) = torch.autograd.grad(value.sum(), loc, allow_unused=True)
    assert grad is None or grad.shape == shape
