"""Reference problems for the discrete estimators (issue 4): small Bernoulli, Categorical and
OneHotCategorical problems whose costs have interactions between dimensions, exact gradients by
brute-force enumeration (itertools, independent of rp.Exact), and a helper that draws ``R``
independent estimates in one call by replicating ``q`` along a leading batch dim.

Why the replication is valid: with logits of shape ``(R, *shape)`` and ``f`` returning one cost
per replicate (shape ``(n, R)``), each cost depends only on its own replicate's variables, and
every estimator credits a cost only to its own batch slice, so row ``r`` of the gradient w.r.t.
the replicated logits is an independent estimate of the gradient for one copy of ``q``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor
from torch.distributions import Bernoulli, Categorical, Distribution, OneHotCategorical

W = torch.tensor([[0.0, 1.0, -2.0], [1.0, 0.0, 0.5], [-2.0, 0.5, 0.0]], dtype=torch.float64)
T = torch.tensor([[0.3, -1.0, 2.0], [1.5, 0.0, -0.5], [-1.0, 2.5, 0.7]], dtype=torch.float64)


def bernoulli_cost(b: Tensor) -> Tensor:
    """Quadratic with pairwise interactions plus a linear term: ``b^T W b + sum_i i b_i``."""
    b = b.to(torch.float64)
    return torch.einsum("...i,ij,...j->...", b, W, b) + (b * torch.arange(3.0, dtype=b.dtype)).sum(-1)


def categorical_cost(z: Tensor) -> Tensor:
    """Cost of two categorical variables (numbers 0..2) with an interaction; smooth in ``z`` so
    the relaxation-based estimators can use it on float categories."""
    z = z.to(torch.float64)
    z0, z1 = z[..., 0], z[..., 1]
    return (z0 - 1.2) ** 2 * (z1 + 0.5) - 0.7 * z0 * z1


def onehot_cost(y: Tensor) -> Tensor:
    """Bilinear cost of two one-hot variables, ``y_0^T T y_1``."""
    y = y.to(torch.float64)
    return torch.einsum("...i,ij,...j->...", y[..., 0, :], T, y[..., 1, :])


@dataclass
class Case:
    name: str
    logits: Tensor
    make_q: Callable[[Tensor], Distribution]
    f: Callable[[Tensor], Tensor]
    values: Callable[[tuple[int, ...]], Tensor]  # one configuration -> a sample (no sample dim)

    def exact_gradient(self) -> tuple[Tensor, Tensor]:
        """``(E[f], grad E[f])`` by summing over every configuration with itertools."""
        logits = self.logits.detach().clone().requires_grad_(True)
        q = self.make_q(logits)
        k = 2 if isinstance(q, Bernoulli) else logits.shape[-1]
        total = torch.zeros((), dtype=torch.float64)
        for config in itertools.product(range(k), repeat=q.batch_shape.numel()):
            z = self.values(config)
            total = total + q.log_prob(z).sum().exp() * self.f(z.unsqueeze(0))[0]
        (grad,) = torch.autograd.grad(total, logits)
        return total.detach(), grad

    def replicated_gradients(self, estimator: object, num_samples: int, replicates: int) -> Tensor:
        """``replicates`` independent gradient estimates, shaped ``(R, *logits.shape)``."""
        logits = self.logits.detach().expand(replicates, *self.logits.shape).clone().requires_grad_(True)
        q = self.make_q(logits)
        value = estimator(self.f, q, num_samples)  # type: ignore[operator]
        assert value.shape == (replicates,)
        (grad,) = torch.autograd.grad(value.sum(), logits)
        return grad


def _bernoulli_case() -> Case:
    return Case(
        "bernoulli",
        torch.tensor([0.3, -0.5, 1.0], dtype=torch.float64),
        lambda logits: Bernoulli(logits=logits),
        bernoulli_cost,
        lambda config: torch.tensor(config, dtype=torch.float64),
    )


def _categorical_case() -> Case:
    return Case(
        "categorical",
        torch.tensor([[0.2, -0.4, 0.9], [1.0, 0.1, -0.6]], dtype=torch.float64),
        lambda logits: Categorical(logits=logits),
        categorical_cost,
        lambda config: torch.tensor(config),
    )


def _onehot_case() -> Case:
    return Case(
        "onehot",
        torch.tensor([[0.5, -0.3, 0.1], [-0.8, 0.4, 0.6]], dtype=torch.float64),
        lambda logits: OneHotCategorical(logits=logits),
        onehot_cost,
        lambda config: torch.nn.functional.one_hot(torch.tensor(config), 3).to(torch.float64),
    )


CASES = {"bernoulli": _bernoulli_case, "categorical": _categorical_case, "onehot": _onehot_case}


def z_scores(estimates: Tensor, exact: Tensor) -> Tensor:
    """``(mean - exact) / (std / sqrt(R))`` per coordinate."""
    r = estimates.shape[0]
    se = estimates.std(0) / r**0.5
    assert bool((se > 0).all()), "degenerate estimates: a z-test needs a positive standard error"
    return (estimates.mean(0) - exact) / se


@pytest.fixture(params=sorted(CASES))
def discrete_case(request: pytest.FixtureRequest) -> Case:
    """Every family with an interacting cost (Bernoulli, Categorical, OneHotCategorical)."""
    return CASES[request.param]()


@pytest.fixture
def bernoulli_case() -> Case:
    return _bernoulli_case()


@pytest.fixture
def categorical_case() -> Case:
    return _categorical_case()


@pytest.fixture
def onehot_case() -> Case:
    return _onehot_case()


@pytest.fixture
def zscores() -> Callable[[Tensor, Tensor], Tensor]:
    return z_scores


@pytest.fixture
def no_default_validation() -> Iterator[None]:
    """torch's default argument validation off for one test: OneHotCategorical builds its inner
    Categorical with the default validation, whose simplex check cannot take a size-0 batch
    (it reshapes to ``(0, -1)``)."""
    saved = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    yield
    Distribution.set_default_validate_args(saved)
