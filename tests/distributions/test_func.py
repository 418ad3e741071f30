"""``torch.func.grad`` through the custom autograd Functions equals the eager gradient (same
draws: the generator is reset to the same state before each)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import reparam as rp

D = rp.distributions

BUILDS: dict[str, Callable[[torch.Tensor], torch.distributions.Distribution]] = {
    "Gamma": lambda a: D.Gamma(a, 1.5, validate_args=False),
    "Beta": lambda a: D.Beta(a, torch.tensor(3.0), validate_args=False),
    "Dirichlet": lambda a: D.Dirichlet(torch.stack([a, a + 1.0]), validate_args=False),
}


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_func_grad_equals_eager_gradient(name: str) -> None:
    def loss(a: torch.Tensor) -> torch.Tensor:
        return (BUILDS[name](a).rsample((40,)) ** 2).sum()

    state = torch.get_rng_state()
    a = torch.tensor(2.0, requires_grad=True)
    loss(a).backward()
    torch.set_rng_state(state)
    got = torch.func.grad(loss)(torch.tensor(2.0))
    # the same computation by another route: equal to rounding
    torch.testing.assert_close(got, a.grad, rtol=1e-6, atol=0)
