"""``torch.func.grad`` and ``vmap`` through the estimators: the transformed gradient equals the
eager autograd gradient on the same draws (both start from the same seed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from seeds import seeded

sys.path.insert(0, str(Path(__file__).parent))  # the shared cases beside this file
from estimator_cases import CASES, forward, params

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


# MeasureValued draws with q.sample, which for torch's Normal and Bernoulli has no
# randomness="same" rule on batched parameters (torch.normal, torch.bernoulli); "different" works.
# DoubleCV is left out here: its beta is a running average over calls, so the loop's members see
# different betas (test_func_grad_matches_autograd covers it with a fresh estimator per run).
VMAP = ["Pathwise(QMC)", "Pathwise", "DisARM", "ARMS", "ScoreFunction(LeaveOneOut)"]


@pytest.mark.parametrize("name", VMAP)
def test_vmap_of_grad_matches_a_loop(name: str) -> None:
    # randomness="same": every batch member sees the draws one unbatched call makes, i.e. what
    # a loop that resets the generator before each member sees.
    make, family = CASES[name]
    batch = [[leaf.detach() for leaf in params(family)] for _ in range(3)]
    estimator = make()
    run = forward(estimator, family)
    argnums = tuple(range(len(batch[0])))
    grad = torch.func.grad(lambda *x: run(*x).sum(), argnums=argnums)
    state = torch.get_rng_state()
    looped = []
    for leaves in batch:
        torch.set_rng_state(state)
        looped.append(grad(*leaves))
    torch.set_rng_state(state)
    stacked = [torch.stack([leaves[i] for leaves in batch]) for i in argnums]
    found = torch.func.vmap(grad, randomness="same")(*stacked)
    for i in argnums:
        torch.testing.assert_close(found[i], torch.stack([g[i] for g in looped]), rtol=1e-5, atol=1e-6)
