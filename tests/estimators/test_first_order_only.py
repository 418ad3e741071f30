"""Estimators whose second derivatives would be wrong refuse ``create_graph=True`` clearly;
``Exact`` (enumeration) gives the exact Hessian."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch
from torch import Tensor
from torch.distributions import Bernoulli, Distribution, Independent, Normal, OneHotCategorical

import reparam as rp
from reparam.estimators.base import first_order_only

FIRST_ORDER_ONLY: dict[str, tuple[Callable[[], object], Callable[[Tensor], Distribution], int]] = {
    "ARM()": (rp.ARM, lambda t: Independent(Bernoulli(logits=t), 1), 2),
    "DisARM()": (rp.DisARM, lambda t: Independent(Bernoulli(logits=t), 1), 2),
    "ARMS()": (rp.ARMS, lambda t: Independent(Bernoulli(logits=t), 1), 3),
    "DoubleCV()": (rp.DoubleCV, lambda t: Independent(Bernoulli(logits=t), 1), 3),
    "CARMS()": (rp.CARMS, lambda t: OneHotCategorical(logits=t), 3),
    "ARSM()": (rp.ARSM, lambda t: OneHotCategorical(logits=t), 2),
    "REBAR()": (rp.REBAR, lambda t: Independent(Bernoulli(logits=t), 1), 2),
    "RELAX()": (rp.RELAX, lambda t: Independent(Bernoulli(logits=t), 1), 2),
    "VIMCO()": (rp.VIMCO, lambda t: Independent(Bernoulli(logits=t), 1), 3),
    "IndeCateR()": (rp.IndeCateR, lambda t: Independent(Bernoulli(logits=t), 1), 2),
    "StraightThrough()": (rp.StraightThrough, lambda t: Independent(Bernoulli(logits=t), 1), 2),
    "MeasureValued()": (rp.MeasureValued, lambda t: Independent(Normal(t, 1.0), 1), 2),
}


def _cost(z: Tensor) -> Tensor:
    return ((z - 0.3) ** 2).sum(-1) + z[..., 0] * z[..., 1]


@pytest.mark.parametrize("name", sorted(FIRST_ORDER_ONLY))
def test_create_graph_is_refused_with_the_estimator_named(name: str) -> None:
    make, build, n = FIRST_ORDER_ONLY[name]
    theta = torch.tensor([0.2, -0.4, 0.1], dtype=torch.float64, requires_grad=True)
    value = rp.expect(_cost, build(theta), make(), num_samples=n)
    with pytest.raises(RuntimeError, match=re.escape(f"{name} gives first derivatives only")):
        torch.autograd.grad(value, theta, create_graph=True)


@pytest.mark.parametrize("name", sorted(FIRST_ORDER_ONLY))
def test_first_derivatives_still_flow(name: str) -> None:
    make, build, n = FIRST_ORDER_ONLY[name]
    theta = torch.tensor([0.2, -0.4, 0.1], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(rp.expect(_cost, build(theta), make(), num_samples=n), theta)
    assert grad.shape == theta.shape and torch.isfinite(grad).all()


def test_first_order_only_is_the_identity_in_value_and_gradient() -> None:
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    y = first_order_only(x, "X()")
    assert torch.equal(y, x)
    (grad,) = torch.autograd.grad((y**2).sum(), x)
    torch.testing.assert_close(grad, 2 * x.detach())


def test_exact_enumeration_gives_the_exact_hessian() -> None:
    # E[f(b)] for independent bits with p = sigmoid(theta) is multilinear in p; its Hessian in
    # theta follows from the closed form E[f] = sum_i E[(b_i - .3)^2] + p_0 p_1.
    theta = torch.tensor([0.2, -0.4, 0.1], dtype=torch.float64, requires_grad=True)
    value = rp.expect(_cost, Independent(Bernoulli(logits=theta), 1), rp.Exact())
    (grad,) = torch.autograd.grad(value, theta, create_graph=True)
    hessian = torch.stack([torch.autograd.grad(g, theta, retain_graph=True)[0] for g in grad])

    def closed(t: Tensor) -> Tensor:
        p = torch.sigmoid(t)
        return (p * 0.49 + (1 - p) * 0.09).sum() + p[0] * p[1]

    torch.testing.assert_close(hessian, torch.autograd.functional.hessian(closed, theta.detach()))


@pytest.mark.parametrize("name", sorted(FIRST_ORDER_ONLY))
def test_nested_torch_func_derivatives_are_refused_too(name: str) -> None:
    """torch.func runs every backward with grad mode on: one grad transform is a first
    derivative (allowed), two (grad of grad, jacrev of grad) a second one (refused)."""
    make, build, n = FIRST_ORDER_ONLY[name]
    estimator = make()

    def value(theta: torch.Tensor) -> torch.Tensor:
        return rp.expect(_cost, build(theta), estimator, num_samples=n)  # type: ignore[arg-type]

    theta = torch.tensor([0.2, -0.4, 0.1], dtype=torch.float64)
    assert torch.isfinite(torch.func.grad(value)(theta)).all()
    with pytest.raises(RuntimeError, match=re.escape(f"{name} gives first derivatives only")):
        torch.func.grad(lambda t: torch.func.grad(value)(t).sum())(theta)
