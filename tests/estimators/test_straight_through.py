"""StraightThrough: exactly discrete forward values, exact for linear f, biased otherwise."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, OneHotCategorical

import reparam as rp


@pytest.mark.parametrize("family", ["bernoulli", "categorical", "onehot"])
def test_forward_value_is_exactly_a_sample(family: str) -> None:
    logits = torch.randn(5, 3, requires_grad=True)
    q = {
        "bernoulli": Bernoulli(logits=logits),
        "categorical": Categorical(logits=logits),
        "onehot": OneHotCategorical(logits=logits),
    }[family]
    seen: list[torch.Tensor] = []

    def f(z: torch.Tensor) -> torch.Tensor:
        seen.append(z.detach().clone())
        flat = z.flatten(1)  # weighted, so the gradient is not zero (a one-hot row sums to 1)
        return (flat * torch.arange(1, flat.shape[1] + 1, dtype=flat.dtype)).sum(-1)

    rp.StraightThrough()(f, q, 20).backward()
    z = seen[0]
    assert torch.equal(z, z.round())
    assert bool(q.support.check(z.long() if family == "categorical" else z).all())
    assert logits.grad.abs().sum() > 0


def test_exact_for_linear_costs() -> None:
    # f(b) = w . b: E[f] = w . sigmoid(a) and ST's gradient is w * sigmoid'(a) for every sample.
    logits = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    w = torch.tensor([1.0, -3.0, 2.0])
    rp.StraightThrough()(lambda b: (b * w).sum(-1), Bernoulli(logits=logits), 3).backward()
    p = torch.sigmoid(logits.detach())
    torch.testing.assert_close(logits.grad, w * p * (1 - p))


def test_unbiased_for_multilinear_costs(bernoulli_case, zscores) -> None:
    # b^T W b with zero diagonal plus a linear term is multilinear in b, so E[f'(b)] equals the
    # derivative of E[f] w.r.t. the means: ST is unbiased there (z-test |z| < 5 as in test_arm).
    _, exact = bernoulli_case.exact_gradient()
    estimates = bernoulli_case.replicated_gradients(rp.StraightThrough(), 1, 20000)
    assert zscores(estimates, exact).abs().max() < 5


def test_biased_for_costs_that_are_not_multilinear(zscores) -> None:
    # f(b) = (w . b - 0.3)^2 contains w_i^2 b_i^2 = w_i^2 b_i, whose derivative ST takes as
    # 2 w_i^2 b_i (mean 2 w_i^2 p_i) instead of w_i^2: a bias of w_i^2 (2 p_i - 1) dp_i/da_i,
    # far beyond 10 standard errors with R = 4000.
    w = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    a = torch.tensor([0.3, -0.5, 1.0], dtype=torch.float64)

    def f(b: torch.Tensor) -> torch.Tensor:
        return ((b.to(torch.float64) * w).sum(-1) - 0.3) ** 2

    a_exact = a.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(rp.Exact()(f, Bernoulli(logits=a_exact), 1), a_exact)
    logits = a.expand(4000, 3).clone().requires_grad_(True)
    (estimates,) = torch.autograd.grad(rp.StraightThrough()(f, Bernoulli(logits=logits), 1).sum(), logits)
    assert zscores(estimates, exact).abs().max() > 10
