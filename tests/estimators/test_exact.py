"""Exact(): enumeration gives the exact expectation and gradient, and refuses huge supports."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, Binomial, Categorical, Normal

import reparam as rp


def test_matches_brute_force_enumeration(discrete_case) -> None:
    expected, exact = discrete_case.exact_gradient()
    logits = discrete_case.logits.clone().requires_grad_(True)
    value = rp.Exact()(discrete_case.f, discrete_case.make_q(logits), 1)
    (grad,) = torch.autograd.grad(value, logits)
    torch.testing.assert_close(value.detach(), expected)
    torch.testing.assert_close(grad, exact)


def test_zero_variance_and_gradients_of_f_parameters() -> None:
    # E[w * sum(b)] = w * sum(p), d/dw = sum(p): exact for f's own parameters too.
    w = torch.tensor(1.5, requires_grad=True)
    p = torch.tensor([0.2, 0.7, 0.4])
    q = Bernoulli(probs=p)
    values = [rp.Exact()(lambda b: w * b.sum(-1), q, 1) for _ in range(3)]
    assert values[0] == values[1] == values[2]
    (grad,) = torch.autograd.grad(values[0], w)
    torch.testing.assert_close(grad, p.sum())


def test_batched_costs_are_credited_to_their_own_slice() -> None:
    # Two independent rows; cost of row r is sum of its bits: E = p_r1 + p_r2 each.
    probs = torch.tensor([[0.1, 0.2], [0.6, 0.9]], requires_grad=True)
    value = rp.Exact()(lambda b: b.sum(-1), Bernoulli(probs=probs), 1)
    torch.testing.assert_close(value, probs.sum(-1))
    value.sum().backward()
    torch.testing.assert_close(probs.grad, torch.ones(2, 2))


def test_binomial_support() -> None:
    probs = torch.tensor([0.3, 0.6], requires_grad=True)
    value = rp.Exact()(lambda k: k.pow(2).sum(-1), Binomial(3, probs), 1)
    # E[k^2] = n p (1 - p) + (n p)^2.
    torch.testing.assert_close(value, (3 * probs * (1 - probs) + (3 * probs) ** 2).sum())


def test_refuses_supports_too_large_to_enumerate() -> None:
    q = Bernoulli(logits=torch.zeros(200))
    with pytest.raises(ValueError, match=r"2\*\*200 joint configurations.*max_support"):
        rp.Exact()(lambda b: b.sum(-1), q, 1)
    with pytest.raises(ValueError, match="max_support"):
        rp.Exact().evaluations(q, 1)
    assert rp.Exact(max_support=2**20).evaluations(Categorical(logits=torch.zeros(4, 3)), 7) == 81


def test_refuses_continuous_q() -> None:
    with pytest.raises(TypeError, match="finite support"):
        rp.Exact()(lambda z: z.sum(-1), Normal(torch.zeros(2), 1.0), 1)


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, None])
def test_max_support_must_be_a_positive_int(bad) -> None:
    # Was `math domain error` (log of 0) at the first call; now refused at construction.
    with pytest.raises(ValueError, match=r"max_support must be an int >= 1.*got .*Exact\(max_support="):
        rp.Exact(max_support=bad)


def test_binomial_with_saturated_logits_matches_the_limit() -> None:
    # Binomial(3, logits=+-inf) is a point mass at 3 / 0 (torch's log_prob is nan there); the
    # expectation is f at that point and its gradient w.r.t. the saturated logit is 0, while the
    # finite logit gets the usual exact gradient: compare with the float64 stand-in +-800, where
    # sigmoid rounds to exactly 1 and exp(-800) to exactly 0.
    f = lambda k: ((k - 1.0) ** 2).sum(-1)  # noqa: E731
    inf = float("inf")
    logits = torch.tensor([inf, -inf, 0.4], dtype=torch.float64, requires_grad=True)
    stand_in = torch.tensor([800.0, -800.0, 0.4], dtype=torch.float64, requires_grad=True)
    value = rp.Exact()(f, Binomial(3, logits=logits), 1)
    expected = rp.Exact()(f, Binomial(3, logits=stand_in), 1)
    (grad,) = torch.autograd.grad(value, logits)
    (expected_grad,) = torch.autograd.grad(expected, stand_in)
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)
    assert grad[0] == 0 and grad[1] == 0
