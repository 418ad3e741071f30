"""Beta: log-space gamma draws (tiny concentrations stay finite and correctly distributed) and the
exact implicit per-sample derivative (torch's grid check, variance, no second order)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from variance_ratio import log_variance_ratio

from reparam.distributions import Beta
from reparam.distributions.dirichlet import log_gamma_rsample


def test_tiny_concentrations_put_mass_at_both_ends_as_scipy_says() -> None:
    # Beta(1e-4, 1e-4): almost all mass within 1e-16 of 0 or 1. Check P(X <= t) at several t
    # (binomial counts within 5 standard errors) and that gradients stay finite.
    a = torch.tensor(1e-4, dtype=torch.float64, requires_grad=True)
    n = 20000
    x = Beta(a, a).rsample((n,))
    (grad,) = torch.autograd.grad(x.sum(), a)
    assert math.isfinite(float(grad))
    values = x.detach().numpy()
    assert bool(((values > 0) & (values < 1)).all())
    for t in (1e-300, 1e-100, 1e-10, 0.5, 1 - 1e-10):
        p = stats.beta(1e-4, 1e-4).cdf(t)
        count = (values <= t).sum()
        assert abs(count - n * p) < 5 * np.sqrt(n * p * (1 - p)), (t, count, n * p)


def test_float32_extremes_finite() -> None:
    for a_val, b_val in ((1e-4, 1e4), (1e4, 1e-4), (1e-3, 1e-3), (1e3, 1e3)):
        a = torch.tensor(a_val, requires_grad=True)
        b = torch.tensor(b_val, requires_grad=True)
        x = Beta(a, b).rsample((1000,))
        assert x.dtype == torch.float32 and bool(torch.isfinite(x).all())
        assert all(bool(torch.isfinite(g)) for g in torch.autograd.grad(x.sum(), (a, b)))


# --- the implicit per-sample derivative -------------------------------------------------------


def _implicit_reference(x: np.ndarray, a: np.ndarray, b: np.ndarray, wrt: str) -> np.ndarray:
    """``-(dF/dtheta)/p`` by scipy central differences with torch's step ``0.01 theta/(1 +
    sqrt(theta))``; the survival function on the upper half so that nothing cancels next to 1."""
    theta = a if wrt == "a" else b
    eps = 0.01 * theta / (1.0 + np.sqrt(theta))
    upper = stats.beta.cdf(x, a, b) > 0.5

    def tail(shift: np.ndarray) -> np.ndarray:
        a_, b_ = (a + shift, b) if wrt == "a" else (a, b + shift)
        return np.where(upper, -stats.beta.sf(x, a_, b_), stats.beta.cdf(x, a_, b_))

    return -(tail(eps) - tail(-eps)) / (2 * eps) / stats.beta.pdf(x, a, b)


def test_per_sample_derivatives_match_torchs_grid_check() -> None:
    # torch's test_beta_sample_grad / test_beta_wrt_alpha / test_beta_wrt_beta, re-expressed:
    # float32, concentrations 1e-2..1e2, 20 samples each, relative error below 0.005 against the
    # implicit derivative by central differences (whose own error is ~1e-4 relative). Deterministic
    # given the samples: the derivative is exact to ~1e-11 (test_incomplete_beta.py).
    grid = torch.tensor([1e-2, 1e-1, 1e0, 1e1, 1e2])
    a = grid.repeat_interleave(5)[:, None].expand(25, 20).clone().requires_grad_(True)
    b = grid.repeat(5)[:, None].expand(25, 20).clone().requires_grad_(True)
    x = Beta(a, b).rsample()
    grad_a, grad_b = torch.autograd.grad(x.sum(), (a, b))
    xs, a_, b_ = x.detach().double().numpy(), a.detach().double().numpy(), b.detach().double().numpy()
    for got, wrt in ((grad_a, "a"), (grad_b, "b")):
        want = _implicit_reference(xs, a_, b_, wrt)
        rel = np.abs(got.double().numpy() - want) / np.abs(want)
        worst = np.unravel_index(rel.argmax(), rel.shape)
        assert rel.max() < 0.005, (wrt, a_[worst], b_[worst], xs[worst], rel.max())


def test_second_derivative_is_refused_with_a_clear_error() -> None:
    a = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    x = Beta(a, b).rsample((5,))
    first = torch.autograd.grad((x**2).sum(), (a, b), retain_graph=True)
    with_graph = torch.autograd.grad((x**2).sum(), (a, b), create_graph=True)
    for g, h in zip(first, with_graph, strict=True):  # building the graph changes nothing first-order
        torch.testing.assert_close(g, h.detach(), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match=r"Beta\.rsample: second derivatives .* not supported"):
        torch.autograd.grad(with_graph[0], a)


VARIANCE_CASES = ((1.0, 1.0), (2.0, 3.0), (10.0, 10.0), (0.5, 0.5), (0.1, 10.0))


@pytest.mark.parametrize(("a_value", "b_value"), VARIANCE_CASES)
def test_per_sample_gradient_variance_at_most_torchs(a_value: float, b_value: float) -> None:
    # Per-sample derivatives dx/da, dx/db from 20000 independent draws of ours and of torch's
    # Beta: log(var ratio) < 5 SE (one-sided false-alarm rate 2.9e-7 per check). Both are the
    # implicit derivative (torch's approximated), so the ratio is 1 up to noise.
    n = 20000
    per_sample = {}
    for name, cls in (("ours", Beta), ("torch", torch.distributions.Beta)):
        a = torch.full((n,), a_value, dtype=torch.float64, requires_grad=True)
        b = torch.full((n,), b_value, dtype=torch.float64, requires_grad=True)
        per_sample[name] = torch.autograd.grad(cls(a, b).rsample().sum(), (a, b))
    for i, wrt in enumerate("ab"):
        log_ratio, se = log_variance_ratio(per_sample["ours"][i], per_sample["torch"][i])
        assert log_ratio < 5 * se, (a_value, b_value, wrt, math.exp(log_ratio), se)


def test_variance_check_detects_the_gamma_transport() -> None:
    # The same check on the former derivative (through the two gammas, 1.85-2.4x torch's
    # variance at these concentrations) fails: log ratio > 5 SE (false-alarm rate 2.9e-7).
    n = 20000
    for a_value, b_value in ((1.0, 1.0), (2.0, 3.0)):
        alpha = torch.tensor([a_value, b_value], dtype=torch.float64).repeat(n, 1).requires_grad_(True)
        log_g = log_gamma_rsample(alpha, (n, 2))
        (transport,) = torch.autograd.grad(torch.sigmoid(log_g[:, 0] - log_g[:, 1]).sum(), alpha)
        a = torch.full((n,), a_value, dtype=torch.float64, requires_grad=True)
        (ours,) = torch.autograd.grad(Beta(a, torch.tensor(b_value).double()).rsample().sum(), a)
        log_ratio, se = log_variance_ratio(transport[:, 0], ours)
        assert log_ratio > 5 * se, (a_value, b_value, math.exp(log_ratio), se)


def test_gradients_reach_given_and_broadcast_concentrations() -> None:
    # rsample differentiates the concentrations as given (no detour through torch's stacked
    # copy): a shared scalar with a float partner, broadcast shapes, and an expanded instance.
    # Deterministic: same draws (same RNG state) through both ways of writing the parameters.
    a = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor([1.0, 3.0], dtype=torch.float64, requires_grad=True)
    state = torch.get_rng_state()
    x = Beta(a, b).rsample((50,))
    grads = torch.autograd.grad(x.sum(), (a, b))
    torch.set_rng_state(state)
    a2, b2 = a.detach().expand(2).clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    x2 = Beta(a2, b2).rsample((50,))
    grads2 = torch.autograd.grad(x2.sum(), (a2, b2))
    torch.testing.assert_close(x, x2, rtol=0, atol=0)
    torch.testing.assert_close(grads[0], grads2[0].sum(), rtol=1e-12, atol=0)
    torch.testing.assert_close(grads[1], grads2[1], rtol=1e-12, atol=0)
    expanded = Beta(a, 3.0).expand((4,))
    assert expanded.rsample((3,)).shape == (3, 4)
    (g,) = torch.autograd.grad(expanded.rsample((3,)).sum(), a)
    assert g.shape == () and bool(torch.isfinite(g))
