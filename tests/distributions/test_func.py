"""``torch.func.grad`` (and, for the gamma family, ``vmap`` over a batch of parameters and
``jacrev``) through the custom autograd Functions equals the eager gradient (same draws: the
generator is reset to the same state before each)."""

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
    "VonMises": lambda a: D.VonMises(0.5, a, validate_args=False),
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


GAMMA_FAMILY: dict[str, Callable[[torch.Tensor], torch.distributions.Distribution]] = {
    "Gamma": lambda a: D.Gamma(a, 1.5, validate_args=False),
    "Chi2": lambda a: D.Chi2(a, validate_args=False),
    "InverseGamma": lambda a: D.InverseGamma(a, 2.0, validate_args=False),
    "StudentT": lambda a: D.StudentT(a, 0.2, 1.3, validate_args=False),
}


@pytest.mark.parametrize("name", sorted(GAMMA_FAMILY))
def test_vmap_of_grad_over_parameters_equals_a_loop(name: str) -> None:
    def loss(a: torch.Tensor) -> torch.Tensor:
        return (GAMMA_FAMILY[name](a).rsample((40,)) ** 2).sum()

    batch = torch.tensor([0.5, 2.0, 20.0])  # log-space draws, the series, Temme's expansion
    state = torch.get_rng_state()
    # randomness="same": every batch entry sees the draws an eager call makes from this state
    got = torch.func.vmap(torch.func.grad(loss), randomness="same")(batch)
    want = []
    for value in batch:
        torch.set_rng_state(state)
        a = value.clone().requires_grad_()
        loss(a).backward()
        want.append(a.grad)
    torch.testing.assert_close(got, torch.stack(want), rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", sorted(GAMMA_FAMILY))
def test_jacrev_of_rsample_equals_per_sample_autograd(name: str) -> None:
    def draw(a: torch.Tensor) -> torch.Tensor:
        return GAMMA_FAMILY[name](a).rsample((6,))

    state = torch.get_rng_state()
    got = torch.func.jacrev(draw)(torch.tensor(2.0))
    torch.set_rng_state(state)
    a = torch.tensor(2.0, requires_grad=True)
    z = draw(a)
    want = torch.stack([torch.autograd.grad(zi, a, retain_graph=True)[0] for zi in z])
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)


def test_von_mises_vmap_of_grad_and_jacrev() -> None:
    # both regimes (series below 50, normal approximation above) inside vmap and jacrev
    def loss(a: torch.Tensor) -> torch.Tensor:
        return (D.VonMises(0.5, a, validate_args=False).rsample((40,)) ** 2).sum()

    batch = torch.tensor([0.5, 2.0, 80.0])
    state = torch.get_rng_state()
    got = torch.func.vmap(torch.func.grad(loss), randomness="same")(batch)
    want = []
    for value in batch:
        torch.set_rng_state(state)
        a = value.clone().requires_grad_()
        loss(a).backward()
        want.append(a.grad)
    torch.testing.assert_close(got, torch.stack(want), rtol=1e-6, atol=0)

    def draw(a: torch.Tensor) -> torch.Tensor:
        return D.VonMises(0.5, a, validate_args=False).rsample((6,))

    state = torch.get_rng_state()
    jac = torch.func.jacrev(draw)(torch.tensor(2.0))
    torch.set_rng_state(state)
    a = torch.tensor(2.0, requires_grad=True)
    z = draw(a)
    per_sample = torch.stack([torch.autograd.grad(zi, a, retain_graph=True)[0] for zi in z])
    torch.testing.assert_close(jac, per_sample, rtol=1e-6, atol=0)
