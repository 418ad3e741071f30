"""Dirichlet: log-space gamma draws (simplex, tiny concentrations) and the exact implicit
per-sample derivative (torch's diagonal and tangent-field checks, variance, no second order)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from variance_ratio import log_variance_ratio

from reparam.distributions import Dirichlet
from reparam.distributions._beta_grad import dirichlet_vjp
from reparam.distributions._gamma_grad import standard_gamma_log_grad
from reparam.distributions.dirichlet import log_gamma_rsample


def test_samples_on_simplex_and_gradients_finite_for_tiny_concentrations() -> None:
    alpha = torch.tensor([1e-4, 1e-3, 5.0], requires_grad=True)
    x = Dirichlet(alpha).rsample((2000,))
    torch.testing.assert_close(x.sum(-1), torch.ones(2000), rtol=0, atol=1e-6)
    (grad,) = torch.autograd.grad((x[..., 0] - x[..., 2]).sum(), alpha)
    assert bool(torch.isfinite(grad).all())


def test_log_gamma_rsample_carries_the_log_space_derivative() -> None:
    alpha = torch.tensor([0.01, 2.0, 300.0], dtype=torch.float64, requires_grad=True)
    log_g = log_gamma_rsample(alpha, (5, 3))
    for i in range(5):
        (grad,) = torch.autograd.grad(log_g[i].sum(), alpha, retain_graph=True)
        torch.testing.assert_close(
            grad, standard_gamma_log_grad(log_g[i].detach(), alpha), rtol=1e-12, atol=0
        )


# --- the implicit per-sample derivative (torch's checks re-expressed, variance, second order) ---


def test_diagonal_derivative_is_the_marginal_betas_implicit_one() -> None:
    # torch's test_dirichlet_on_diagonal: dx_0/dalpha_0 is the implicit derivative of the
    # marginal Beta(alpha_0, alpha_1 + alpha_2) (its second parameter fixed). Float32, 20 samples
    # for each of the 27 concentrations in {0.1, 1, 10}^3, relative error below 0.001 against
    # central differences of scipy's CDF (survival function on the upper half).
    grid = torch.tensor([0.1, 1.0, 10.0])
    triples = torch.cartesian_prod(grid, grid, grid)
    alpha = triples[:, None, :].expand(27, 20, 3).clone().requires_grad_(True)
    x = Dirichlet(alpha).rsample()[..., 0]
    (grad,) = torch.autograd.grad(x.sum(), alpha)
    xs = x.detach().double().numpy()
    a = triples[:, None, 0].double().numpy()
    b = (triples[:, None, 1] + triples[:, None, 2]).double().numpy()
    eps = 0.01 * a / (1.0 + np.sqrt(a))
    upper = stats.beta.cdf(xs, a, b) > 0.5

    def tail(shift: np.ndarray) -> np.ndarray:
        return np.where(upper, -stats.beta.sf(xs, a + shift, b), stats.beta.cdf(xs, a + shift, b))

    want = -(tail(eps) - tail(-eps)) / (2 * eps) / stats.beta.pdf(xs, a, b)
    rel = np.abs(grad[..., 0].double().numpy() - want) / np.abs(want)
    assert rel.max() < 1e-3, (triples[int(rel.argmax() // 20)].tolist(), rel.max())


def test_tangent_field_satisfies_the_continuity_equation() -> None:
    # torch's test_dirichlet_tangent_field: v_j = dx_j/dalpha_0 transports the density,
    # d log p/d alpha_0 + grad_x log p . v + div v = 0 on the simplex, with div v by central
    # differences along an orthonormal basis of the simplex's tangent plane (step 1e-2 min x;
    # difference error ~1e-4, float64 here where torch uses float32 and allows 0.005: 1e-3).
    grid = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    triples = torch.cartesian_prod(grid, grid, grid)
    alpha = triples[:, None, :].expand(27, 20, 3).clone().requires_grad_(True)
    x = Dirichlet(alpha).rsample().detach()

    def tangent(at: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(3, dtype=at.dtype)
        return torch.stack([dirichlet_vjp(at, alpha, eye[j].expand_as(at))[..., 0] for j in range(3)], -1)

    xr = x.clone().requires_grad_(True)
    (dlogp_dalpha,) = torch.autograd.grad(Dirichlet(alpha).log_prob(x).sum(), alpha)
    (dlogp_dx,) = torch.autograd.grad(Dirichlet(alpha.detach()).log_prob(xr).sum(), xr)
    v = tangent(x)
    basis = torch.tensor([[2.0, -1.0, -1.0], [0.0, 1.0, -1.0]], dtype=torch.float64)
    basis = basis / basis.norm(dim=-1, keepdim=True)
    eps = 1e-2 * x.amin(-1, keepdim=True)
    divergence = sum(
        ((tangent(x + eps * e) - tangent(x - eps * e)) / (2 * eps) * e).sum(-1) for e in basis
    )
    error = dlogp_dalpha[..., 0] + (dlogp_dx * v).sum(-1) + divergence
    assert float(error.abs().max()) < 1e-3, float(error.abs().max())


def test_backward_equals_the_tangent_field_helper() -> None:
    alpha = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64).repeat(50, 1).requires_grad_(True)
    x = Dirichlet(alpha).rsample()
    g = torch.randn_like(x)
    (got,) = torch.autograd.grad((x * g).sum(), alpha)
    torch.testing.assert_close(got, dirichlet_vjp(x.detach(), alpha, g), rtol=0, atol=0)


def test_second_derivative_is_refused_with_a_clear_error() -> None:
    alpha = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    x = Dirichlet(alpha).rsample((5,))
    (first,) = torch.autograd.grad((x[..., 0] ** 2).sum(), alpha, create_graph=True)
    with pytest.raises(RuntimeError, match=r"Dirichlet\.rsample: second derivatives .* not supported"):
        torch.autograd.grad(first.sum(), alpha)


@pytest.mark.parametrize("concentration", [(0.5, 1.0, 2.0), (3.0, 3.0, 3.0, 3.0)])
def test_per_sample_gradient_variance_at_most_torchs(concentration: tuple[float, ...]) -> None:
    # Per-sample gradients of x_0 + 2 x_1 (a direction that is not a coordinate) in every
    # concentration, 20000 independent draws of ours and of torch's Dirichlet: log(var ratio)
    # < 5 SE (one-sided false-alarm rate 2.9e-7 per component).
    n = 20000
    weights = torch.zeros(len(concentration), dtype=torch.float64)
    weights[0], weights[1] = 1.0, 2.0
    per_sample = {}
    for name, cls in (("ours", Dirichlet), ("torch", torch.distributions.Dirichlet)):
        alpha = torch.tensor(concentration, dtype=torch.float64).repeat(n, 1).requires_grad_(True)
        (per_sample[name],) = torch.autograd.grad((cls(alpha).rsample() * weights).sum(), alpha)
    for i in range(len(concentration)):
        log_ratio, se = log_variance_ratio(per_sample["ours"][:, i], per_sample["torch"][:, i])
        assert log_ratio < 5 * se, (concentration, i, math.exp(log_ratio), se)
