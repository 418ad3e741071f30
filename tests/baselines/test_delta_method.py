"""DeltaMethod control variate: exact for quadratics, unbiased for other f, helps REINFORCE."""

from __future__ import annotations

import math

import torch
from torch.distributions import Independent, MultivariateNormal, Normal

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
