"""``torch.func.grad`` and ``vmap`` through the estimators: the transformed gradient equals the
eager autograd gradient on the same draws (both start from the same seed)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from seeds import seeded

sys.path.insert(0, str(Path(__file__).parent))  # the shared cases beside this file
from estimator_cases import CASES, forward, params
from test_first_order_only import FIRST_ORDER_ONLY, _cost

import reparam as rp

# Every case but the stateful ones whose state is a module or a running average the transform
# would capture as a tracer (Learned trains its module through a side channel; MovingAverage
# stores the transformed mean): those run under torch.compile, not under torch.func.
FUNC = sorted(name for name in CASES if "Learned" not in name and "MovingAverage" not in name)


@pytest.mark.parametrize("name", FUNC)
def test_func_grad_matches_autograd(name: str) -> None:
    make, family = CASES[name]
    leaves = [leaf.detach() for leaf in params(family)]
    torch.manual_seed(seeded(12))
    estimator = make()
    run = forward(estimator, family)
    # a second, identical estimator: stateful ones (DoubleCV, baselines) must start over too
    torch.manual_seed(seeded(12))
    fresh = forward(make(), family)
    state = torch.get_rng_state()
    mine = [leaf.clone().requires_grad_(True) for leaf in leaves]
    expected = torch.autograd.grad(run(*mine).sum(), mine)
    torch.set_rng_state(state)
    found = torch.func.grad(lambda *x: fresh(*x).sum(), argnums=tuple(range(len(leaves))))(*leaves)
    for e, f in zip(expected, found, strict=True):
        torch.testing.assert_close(f, e, rtol=1e-5, atol=1e-6)  # same ops, same draws


# Every case whose sampler has a randomness="same" rule for batched parameters, except the
# stateful ones (a running state differs between the loop and the batched call). Those drawing
# with torch.normal/torch.bernoulli/torch.multinomial on batched parameters (MeasureValued,
# VIMCO, IndeCateR, StraightThrough, the Bernoulli/categorical score functions) run under
# randomness="different" (test_vmap_of_grad_with_different_draws below), QMC not under vmap.
SAME = [
    "ARM", "ARMS", "ARSM", "CARMS", "DisARM", "Exact", "GumbelSoftmax", "GumbelSoftmax(straight_through)",
    "Pathwise", "Pathwise(Antithetic)", "Pathwise(ImportanceSampling)", "Pathwise(Stratified)",
    "REBAR", "RELAX", "RELAX-categorical", "ScoreFunction", "ScoreFunction(DeltaMethod)",
    "ScoreFunction(LeaveOneOut)",
]  # fmt: skip


@pytest.mark.parametrize("name", SAME)
def test_vmap_of_grad_matches_a_loop(name: str) -> None:
    # randomness="same": every batch member sees the draws one unbatched call makes, i.e. what
    # a loop that resets the generator before each member sees. A fresh estimator per call
    # (same initial state: REBAR/RELAX's control parameters are drawn at construction).
    make, family = CASES[name]
    batch = [[leaf.detach() for leaf in params(family)] for _ in range(3)]  # three different points
    argnums = tuple(range(len(batch[0])))

    def fresh_grad() -> Callable[..., tuple[torch.Tensor, ...]]:
        torch.manual_seed(seeded(5))
        run = forward(make(), family)
        return torch.func.grad(lambda *x: run(*x).sum(), argnums=argnums)

    torch.manual_seed(seeded(6))
    state = torch.get_rng_state()
    looped = []
    for leaves in batch:
        grad = fresh_grad()
        torch.set_rng_state(state)
        looped.append(grad(*leaves))
    grad = fresh_grad()
    torch.set_rng_state(state)
    stacked = [torch.stack([leaves[i] for leaves in batch]) for i in argnums]
    found = torch.func.vmap(grad, randomness="same")(*stacked)
    for i in argnums:
        want = torch.stack([g[i] for g in looped])
        assert not torch.equal(want[0], want[1])  # the points differ, so do their gradients
        torch.testing.assert_close(found[i], want, rtol=1e-5, atol=1e-6)  # same ops, same draws


DIFFERENT = ["IndeCateR", "MeasureValued", "MeasureValued-bernoulli", "ScoreFunction(LeaveOneOut)-bernoulli",
             "ScoreFunction(LeaveOneOut)-categorical", "StraightThrough", "VIMCO"]  # fmt: skip


@pytest.mark.parametrize("name", DIFFERENT)
def test_vmap_of_grad_with_different_draws(name: str) -> None:
    # No same-draws reference here: each member's gradient is finite, shaped like its
    # parameters, and the members differ (their own draws and parameters).
    make, family = CASES[name]
    leaves = [leaf.detach() for leaf in params(family)]
    run = forward(make(), family)
    argnums = tuple(range(len(leaves)))
    grad = torch.func.grad(lambda *x: run(*x).sum(), argnums=argnums)
    stacked = [torch.stack([leaf, leaf * 0.9, leaf * 1.1]) for leaf in leaves]
    found = torch.func.vmap(grad, randomness="different")(*stacked)
    for g, x in zip(found, stacked, strict=True):
        assert g.shape == x.shape and torch.isfinite(g).all() and not torch.equal(g[0], g[1])


@pytest.mark.parametrize("name", sorted(FIRST_ORDER_ONLY))
def test_vmap_of_grad_allowed_and_vmap_of_second_derivative_refused(name: str) -> None:
    # vmap is no differentiating transform: vmap(grad) is a batch of first derivatives (allowed);
    # vmap(grad(grad)) and grad(vmap(grad)) are second derivatives (refused with the name).
    make, build, n = FIRST_ORDER_ONLY[name]

    def value() -> Callable[[torch.Tensor], torch.Tensor]:
        estimator = make()  # a fresh one per transform: DoubleCV keeps state between calls
        return lambda theta: rp.expect(_cost, build(theta), estimator, num_samples=n)  # type: ignore[arg-type]

    thetas = torch.tensor([[0.2, -0.4, 0.1], [0.3, 0.5, -0.2]], dtype=torch.float64)
    first = torch.func.vmap(torch.func.grad(value()), randomness="different")(thetas)
    assert first.shape == thetas.shape and torch.isfinite(first).all()
    other = value()  # made outside the transforms (RELAX's control initialises in place at random)
    second = torch.func.grad(lambda t: torch.func.grad(other)(t).sum())
    with pytest.raises(RuntimeError, match=re.escape(f"{name} gives first derivatives only")):
        torch.func.vmap(second, randomness="different")(thetas)
    batched_first = torch.func.vmap(torch.func.grad(value()), randomness="different")
    with pytest.raises(RuntimeError, match=re.escape(f"{name} gives first derivatives only")):
        torch.func.grad(lambda t: batched_first(t).sum())(thetas)
