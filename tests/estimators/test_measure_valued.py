"""Measure-valued estimator: unbiased per parameter against closed forms and enumeration;
the one-sample variance of the coupled Normal-location estimator."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch.distributions import Bernoulli, Exponential, Gamma, Independent, Normal, Poisson

import reparam as rp


@pytest.mark.parametrize(("mu", "sigma"), [(0.5, 1.5), (-2.0, 0.3)])
def test_unbiased_normal(mu, sigma, estimates, unbiased) -> None:
    # E[cos(2z)] = cos(2 mu) exp(-2 sigma^2).
    e = math.exp(-2 * sigma**2)
    grads = estimates(Normal, lambda z: torch.cos(2 * z), rp.MeasureValued(), (mu, sigma), repeats=1500)
    unbiased(grads[0], -2 * math.sin(2 * mu) * e)
    unbiased(grads[1], -4 * sigma * math.cos(2 * mu) * e)


def test_unbiased_exponential(estimates, unbiased) -> None:
    lam = 0.6
    (grad,) = estimates(Exponential, torch.sin, rp.MeasureValued(), (lam,), repeats=1500)
    unbiased(grad, (1 - lam**2) / (1 + lam**2) ** 2)


def test_unbiased_poisson(estimates, unbiased) -> None:
    lam = 3.0
    f = lambda k: torch.sqrt(k) + 1.0 / (1.0 + k)  # noqa: E731
    ks = torch.arange(0, 80, dtype=torch.float64)
    pmf = torch.as_tensor(stats.poisson.pmf(ks.numpy(), lam))
    exact = float((f(ks) * pmf * (ks / lam - 1)).sum())
    (grad,) = estimates(Poisson, f, rp.MeasureValued(), (lam,), repeats=1500)
    unbiased(grad, exact)


def test_bernoulli_is_exact_for_one_variable() -> None:
    # p+ = delta_1, p- = delta_0: the estimate c (f(1) - f(0)) is the exact derivative in probs,
    # and logits get p (1 - p) times it by the chain rule: zero variance for a single variable.
    logit = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    value = rp.expect(lambda b: (b - 0.2) ** 2, Bernoulli(logits=logit), rp.MeasureValued())
    value.backward()
    p = torch.sigmoid(torch.tensor(0.4, dtype=torch.float64))
    assert torch.allclose(logit.grad, p * (1 - p) * (0.64 - 0.04))


def test_interacting_dims_independent_wrapper(unbiased) -> None:
    # z ~ N(mu, 1) in 3 dims (Independent), f = z_0 z_1 + z_2^2: d/dmu = (mu_1, mu_0, 2 mu_2).
    mu = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    grads = []
    for _ in range(1500):
        q = Independent(Normal(mu, torch.ones(3, dtype=torch.float64)), 1)
        value = rp.expect(lambda z: z[..., 0] * z[..., 1] + z[..., 2] ** 2, q, rp.MeasureValued())
        grads.append(torch.autograd.grad(value, mu)[0])
    grads = torch.stack(grads)
    for d, exact in enumerate([-1.0, 0.5, 4.0]):
        unbiased(grads[:, d], exact)


def test_one_sample_variance_matches_closed_form(estimates) -> None:
    # x ~ N(1, 1), f = x^2, coupled Rayleigh W on both sides: estimate = (4 W) / sqrt(2 pi),
    # variance 16 (2 - pi/2) / (2 pi) = 1.0929. Sample-variance standard error with R = 20000:
    # sqrt((mu4 - var^2)/R), mu4 of a Rayleigh-based variable ~ 3.3 var^2 -> ~0.017; use 5 SE.
    (grad, _) = estimates(Normal, lambda z: z**2, rp.MeasureValued(), (1.0, 1.0), repeats=20000)
    exact = 16 * (2 - math.pi / 2) / (2 * math.pi)
    assert abs(grad.var().item() - exact) < 0.09


def test_evaluations_count() -> None:
    q = Normal(torch.zeros(4), torch.ones(4))
    assert rp.MeasureValued().evaluations(q, 3) == 3 * (1 + 2 * 2 * 4)


def test_unsupported_distribution_names_alternatives() -> None:
    q = Gamma(torch.tensor(2.0), torch.tensor(1.0))
    with pytest.raises(TypeError, match=r"MeasureValued\(\) does not support Gamma.*ScoreFunction"):
        rp.expect(lambda z: z, q, rp.MeasureValued())


def test_create_graph_is_refused_with_the_alternatives_named() -> None:
    # The weak-derivative estimate has no graph in q's parameters: a second derivative through
    # it would be silently wrong (it was zero), so asking for one is an error.
    loc = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    value = rp.expect(lambda z: (z**2).sum(-1), Independent(Normal(loc, scale), 1), rp.MeasureValued(), 4)
    with pytest.raises(RuntimeError, match=r"MeasureValued\(\).*create_graph.*Pathwise.*ScoreFunction"):
        torch.autograd.grad(value, (loc, scale), create_graph=True)
    # A plain first derivative still works on the same kind of graph.
    value = rp.expect(lambda z: (z**2).sum(-1), Independent(Normal(loc, scale), 1), rp.MeasureValued(), 4)
    grads = torch.autograd.grad(value, (loc, scale))
    assert all(torch.isfinite(g).all() for g in grads)


def test_create_graph_for_parameters_of_f_only_still_works() -> None:
    # Only f's parameter requires grad: the surrogate's value is the plain mean of f, whose
    # second derivative in f's parameter is exact (samples do not depend on it).
    w = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    q = Normal(torch.tensor(1.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    value = rp.expect(lambda z: w**3 * z, q, rp.MeasureValued(), 8)
    (g,) = torch.autograd.grad(value, w, create_graph=True)
    (h,) = torch.autograd.grad(g, w)
    # d^2/dw^2 of w^3 * mean(z) = 6 w mean(z) and g = 3 w^2 mean(z): h = 2 g / w exactly.
    assert torch.allclose(h, 2 * g.detach() / w.detach())


@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3)])
@pytest.mark.parametrize("family", [Normal, Exponential, Poisson, Bernoulli])
@pytest.mark.parametrize("per_slice", [False, True])
def test_size_zero_batch_gives_empty_value_and_gradient(shape, family, per_slice) -> None:
    params = [torch.full(shape, 0.5, requires_grad=True) for _ in range(2 if family is Normal else 1)]
    if per_slice:  # one cost per leading batch element (none left for a 1-d batch)
        f = lambda z: z.float().sum(-1)  # noqa: E731
        expected = shape[:1] if len(shape) > 1 else ()
    else:  # one cost per sample
        f = lambda z: z.float().sum(dim=tuple(range(1, z.dim())))  # noqa: E731
        expected = ()
    value = rp.expect(f, family(*params), rp.MeasureValued(), 3)
    assert value.shape == expected
    grads = torch.autograd.grad(value.sum(), params)
    assert [g.shape for g in grads] == [p.shape for p in params]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("family", ["normal", "exponential", "poisson", "bernoulli"])
def test_half_precision_value_and_gradient_finite_with_dtype_kept(dtype: torch.dtype, family: str) -> None:
    # CPU has no bfloat16 kernel for the noise draws: they are drawn in float32 and cast.
    p = torch.randn(3).to(dtype).requires_grad_(True)
    q = {
        "normal": lambda: Normal(p, p.exp()),
        "exponential": lambda: Exponential(p.exp()),
        "poisson": lambda: Poisson(p.exp()),
        "bernoulli": lambda: Bernoulli(logits=p),
    }[family]()
    value = rp.expect(lambda z: ((z - 1.0) ** 2).sum(-1), q, rp.MeasureValued(), 8)
    value.backward()
    assert value.dtype == dtype and p.grad is not None and p.grad.dtype == dtype
    assert torch.isfinite(value).all() and torch.isfinite(p.grad).all()
