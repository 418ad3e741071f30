"""Discrete estimators at the edges of their parameter space (issue 13): masked categories
(logit ``-inf``), saturated Bernoulli logits (``+-inf``) and size-0 batch dims.

The correct value at an infinite logit is the limit, and in float64 the limit is reached
exactly at a finite stand-in: ``exp(-800)`` underflows to 0 and ``sigmoid(800)`` rounds to 1,
so a logit of ``-800`` is a masked category (probability exactly 0, derivatives exactly 0) and
``+-800`` a saturated Bernoulli. So each estimator must give, at infinite logits,

* a finite value and finite gradients (also of REBAR's/RELAX's own parameters);
* with the same random numbers, the same value and the same gradient on the finite logits as at
  the stand-in ``+-800`` (a deterministic check, float64 rounding only);
* gradient exactly 0 w.r.t. the infinite logits (the expectation does not depend on them);
* for the unbiased ones, a mean equal to the exact gradient by enumeration (a z-test).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import pytest
import torch
from seeds import seeded
from torch import Tensor
from torch.distributions import Bernoulli, Categorical, Distribution, OneHotCategorical

import reparam as rp

INF = math.inf
STAND_IN = 800.0  # exp(-800) == 0.0 and sigmoid(800) == 1.0 exactly in float64

W = torch.tensor(
    [[0.0, 1.0, -2.0, 0.5], [1.0, 0.0, 0.5, -1.0], [-2.0, 0.5, 0.0, 1.5], [0.5, -1.0, 1.5, 0.0]],
    dtype=torch.float64,
)
T = torch.tensor([[0.3, -1.0, 2.0], [1.5, 0.0, -0.5], [-1.0, 2.5, 0.7]], dtype=torch.float64)


def bernoulli_cost(b: Tensor) -> Tensor:
    """Quadratic with pairwise interactions: ``b^T W b + sum_i (i + 1) b_i``."""
    b = b.to(torch.float64)
    linear = (b * torch.arange(1.0, 5.0, dtype=b.dtype)).sum(-1)
    return torch.einsum("...i,ij,...j->...", b, W, b) + linear


def categorical_cost(z: Tensor) -> Tensor:
    """Two category numbers with an interaction; smooth, so relaxed (float) categories work."""
    z = z.to(torch.float64)
    z0, z1 = z[..., 0], z[..., 1]
    return (z0 - 1.2) ** 2 * (z1 + 0.5) - 0.7 * z0 * z1


def onehot_cost(y: Tensor) -> Tensor:
    """Bilinear cost of two one-hot variables, ``y_0^T T y_1``."""
    y = y.to(torch.float64)
    return torch.einsum("...i,ij,...j->...", y[..., 0, :], T, y[..., 1, :])


BERNOULLI_GRID = [[0.3, INF, -INF, -0.5], [INF, -INF, INF, -INF], [-INF, 1.1, -0.4, INF]]
CATEGORICAL_GRID = [
    [[0.3, -INF, 1.0], [-INF, 0.2, -INF]],  # the second variable is certain
    [[-INF, 0.5, -0.4], [0.1, -INF, 0.6]],
    [[0.0, 0.0, -INF], [0.2, -0.3, 0.9]],
]

FAMILIES: dict[str, tuple[Callable[[Tensor], Distribution], Callable[[Tensor], Tensor], list]] = {
    "bernoulli": (lambda logits: Bernoulli(logits=logits), bernoulli_cost, BERNOULLI_GRID),
    "categorical": (lambda logits: Categorical(logits=logits), categorical_cost, CATEGORICAL_GRID),
    "onehot": (lambda logits: OneHotCategorical(logits=logits), onehot_cost, CATEGORICAL_GRID),
}

ESTIMATORS: dict[str, Callable[[], object]] = {
    "ARM": rp.ARM,
    "DisARM": rp.DisARM,
    "ARMS": rp.ARMS,
    "DoubleCV": lambda: rp.DoubleCV(coefficient=0.5),  # a fixed beta: the same draws give the same value
    "REBAR": lambda: rp.REBAR().double(),
    "RELAX": lambda: rp.RELAX().double(),
    "Exact": rp.Exact,
    "IndeCateR": rp.IndeCateR,
    "GumbelSoftmax": lambda: rp.GumbelSoftmax(0.5),
    "GumbelSoftmaxST": lambda: rp.GumbelSoftmax(0.5, straight_through=True),
    "StraightThrough": rp.StraightThrough,
}
BERNOULLI_ONLY = {"ARM", "DisARM", "ARMS", "DoubleCV"}
UNBIASED = ["ARM", "DisARM", "ARMS", "DoubleCV", "REBAR", "RELAX", "IndeCateR"]
MIN_SAMPLES = {"ARMS": 2, "DoubleCV": 2}  # correlated / leave-one-out samples need two


def _cases() -> Iterator[tuple[str, str, int]]:
    for name in ESTIMATORS:
        for family, (_, _, grid) in FAMILIES.items():
            if family != "bernoulli" and name in BERNOULLI_ONLY:
                continue
            for row in range(len(grid)):
                yield name, family, row


def _stand_in(logits: Tensor) -> Tensor:
    return logits.nan_to_num(posinf=STAND_IN, neginf=-STAND_IN)


def _run(estimator: object, family: str, logits: Tensor, num_samples: int) -> tuple[Tensor, list[Tensor]]:
    """Value and gradients w.r.t. the logits and the estimator's own parameters (if any)."""
    make_q, f, _ = FAMILIES[family]
    leaf = logits.clone().requires_grad_(True)
    own = list(estimator.parameters()) if isinstance(estimator, torch.nn.Module) else []
    value = estimator(f, make_q(leaf), num_samples)  # type: ignore[operator]
    grads = torch.autograd.grad(value.sum(), [leaf, *own])
    return value.detach(), list(grads)


@pytest.mark.parametrize(("name", "family", "row"), list(_cases()))
def test_infinite_logits_give_the_limit(name: str, family: str, row: int) -> None:
    logits = torch.tensor(FAMILIES[family][2][row], dtype=torch.float64)
    infinite = torch.isinf(logits)
    estimator = ESTIMATORS[name]()
    torch.manual_seed(seeded(13))
    value, grads = _run(estimator, family, logits, 4)
    torch.manual_seed(seeded(13))
    value_limit, grads_limit = _run(estimator, family, _stand_in(logits), 4)
    assert torch.isfinite(value).all(), f"{name}: value {value}"
    assert all(torch.isfinite(g).all() for g in grads), f"{name}: gradients {grads}"
    assert bool((grads[0][infinite] == 0).all()), f"{name}: gradient at infinite logits {grads[0]}"
    # Same random numbers: float64 rounding differences only (the stand-in's terms that are
    # exactly 0 here are ~1e-300 there at most).
    torch.testing.assert_close(value, value_limit, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grads[0][~infinite], grads_limit[0][~infinite], rtol=1e-9, atol=1e-12)
    for own, own_limit in zip(grads[1:], grads_limit[1:], strict=True):  # REBAR/RELAX variance grads
        torch.testing.assert_close(own, own_limit, rtol=1e-9, atol=1e-12)


def _exact_limit(family: str, logits: Tensor) -> tuple[Tensor, Tensor]:
    """``(E[f], grad E[f])`` at the limit by summing over every configuration (itertools)."""
    make_q, f, _ = FAMILIES[family]
    leaf = _stand_in(logits).requires_grad_(True)
    q = make_q(leaf)
    k = 2 if family == "bernoulli" else logits.shape[-1]
    total = torch.zeros((), dtype=torch.float64)
    for config in itertools.product(range(k), repeat=q.batch_shape.numel()):
        z = torch.tensor(config)
        if family == "bernoulli":
            z = z.to(torch.float64)
        elif family == "onehot":
            z = torch.nn.functional.one_hot(z, k).to(torch.float64)
        total = total + q.log_prob(z).sum().exp() * f(z.unsqueeze(0))[0]
    (grad,) = torch.autograd.grad(total, leaf)
    return total.detach(), grad


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_exact_equals_enumeration_at_the_limit(family: str) -> None:
    for row in FAMILIES[family][2]:
        logits = torch.tensor(row, dtype=torch.float64)
        expected, expected_grad = _exact_limit(family, logits)
        value, grads = _run(rp.Exact(), family, logits, 1)
        torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grads[0], expected_grad, rtol=1e-12, atol=1e-12)


def test_exact_ignores_f_at_impossible_configurations() -> None:
    # f is nan wherever the masked category (probability 0) is taken: it must not leak.
    logits = torch.tensor([[0.3, -INF, 1.0], [0.0, 0.5, -0.2]], dtype=torch.float64, requires_grad=True)

    def f(z: Tensor) -> Tensor:
        cost = z.to(torch.float64).sum(-1)
        return torch.where(z[..., 0] == 1, torch.full_like(cost, math.nan), cost)

    value = rp.Exact()(f, Categorical(logits=logits), 1)
    (grad,) = torch.autograd.grad(value, logits)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


@pytest.mark.parametrize(
    ("name", "family"),
    [(n, fam) for n in UNBIASED for fam in FAMILIES if not (fam != "bernoulli" and n in BERNOULLI_ONLY)],
)
def test_unbiased_at_the_limit(name: str, family: str) -> None:
    # R independent estimates in one call (logits replicated along a leading batch dim, one
    # cost per replicate). z = (mean - exact) / (sd / sqrt(R)) is ~N(0, 1) per coordinate:
    # |z| < 5 has a two-sided false-alarm rate of 5.7e-7 per coordinate. Coordinates whose
    # estimates are constant (infinite logits, a certain variable) are checked exactly.
    torch.manual_seed(seeded(31))
    logits = torch.tensor(FAMILIES[family][2][0], dtype=torch.float64)
    _, exact = _exact_limit(family, logits)
    replicates = 4000 if name == "RELAX" else 20000
    make_q, f, _ = FAMILIES[family]
    leaf = logits.expand(replicates, *logits.shape).clone().requires_grad_(True)
    value = ESTIMATORS[name]()(f, make_q(leaf), MIN_SAMPLES.get(name, 1))  # type: ignore[operator]
    assert value.shape == (replicates,)
    (estimates,) = torch.autograd.grad(value.sum(), leaf)
    assert bool((estimates[:, torch.isinf(logits)] == 0).all())
    stderr = estimates.std(0) / replicates**0.5
    constant = stderr < 1e-12
    assert torch.allclose(estimates.mean(0)[constant], exact[constant], atol=1e-10)
    z = (estimates.mean(0)[~constant] - exact[~constant]) / stderr[~constant]
    # (IndeCateR on the categorical rows is exact: one variable is certain, the other summed out.)
    assert bool((z.abs() < 5).all()), f"{name} {family}: z = {z}"


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_float32_infinite_logits_are_finite(name: str) -> None:
    for family in FAMILIES:
        if family != "bernoulli" and name in BERNOULLI_ONLY:
            continue
        logits = torch.tensor(FAMILIES[family][2][0], dtype=torch.float32)
        estimator = ESTIMATORS[name]()
        if isinstance(estimator, torch.nn.Module):
            estimator = estimator.float()
        value, grads = _run(estimator, family, logits, 3)
        assert torch.isfinite(value).all() and all(torch.isfinite(g).all() for g in grads)
        assert bool((grads[0][torch.isinf(logits)] == 0).all())




@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3)])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_size_zero_batch(no_default_validation: None, name: str, shape: tuple[int, ...]) -> None:
    for family in FAMILIES:
        if family != "bernoulli" and name in BERNOULLI_ONLY:
            continue
        event = () if family == "bernoulli" else (3,)
        leaf = torch.zeros(*shape, *event, dtype=torch.float64, requires_grad=True)
        for per_slice in (False, True):
            if per_slice and len(shape) == 1:
                continue
            q = FAMILIES[family][0](leaf)
            # Costs per sample, or one per leading batch element.
            keep = 2 if per_slice else 1
            f = lambda z, keep=keep: z.to(torch.float64).sum(dim=tuple(range(keep, z.dim())))  # noqa: E731
            value = ESTIMATORS[name]()(f, q, 2)  # type: ignore[operator]
            assert value.shape == (shape[:1] if per_slice else ())
            (grad,) = torch.autograd.grad(value.sum(), leaf, allow_unused=True)
            assert grad is not None and grad.shape == leaf.shape
