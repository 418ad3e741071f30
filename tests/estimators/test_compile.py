"""Every estimator compiles with the recommended ``rp.compile`` (``torch.compile`` with
``fullgraph=True``: no graph break; inductor with ``fallback_random``) and the compiled step
gives the eager step's value and gradients on the same random draws.

The forward (``rp.expect`` with the distribution built inside) is compiled; ``backward`` runs
the graph AOT autograd compiled with it. Most cases use the ``aot_eager`` backend (the same
tracing and autograd capture as inductor, without its seconds-long code generation); three
representative ones compile with inductor, where ``rp.compile``'s ``fallback_random`` option
(passed per compilation, not through the global config) makes the graph draw with eager's
generator, so the draws match. Both runs start from the same seed, so they see the same noise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch._dynamo
from seeds import seeded

sys.path.insert(0, str(Path(__file__).parent))  # the shared cases beside this file
from estimator_cases import CASES, forward, params

import reparam as rp

pytestmark = pytest.mark.usefixtures("validation_off_as_under_compile")  # as torch.compile runs


INDUCTOR = {"Pathwise", "DisARM", "ScoreFunction(LeaveOneOut)"}  # Antithetic: tests/test_compiling.py


def _step(name: str, compiled: bool, backend: str, leaves: list[torch.Tensor]) -> list[torch.Tensor]:
    """Value and gradients of two consecutive steps (stateful baselines move between them)."""
    make, family = CASES[name]
    torch.manual_seed(seeded(11))  # before make(): modules (RELAX's control, Learned) draw their init
    estimator = make()
    run = forward(estimator, family)
    if compiled:
        run = rp.compile(run, backend=backend)  # fullgraph=True; fallback_random for inductor
    out = []
    for _ in range(2):
        mine = [leaf.detach().clone().requires_grad_(True) for leaf in leaves]
        value = run(*mine)
        value.sum().backward()
        out += [value.detach(), *(leaf.grad for leaf in mine)]
        extra = [p.grad for p in getattr(estimator, "parameters", lambda: [])()]
        out += [g for g in extra if g is not None]
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_step_matches_eager(name: str) -> None:
    torch._dynamo.reset()
    leaves = params(CASES[name][1])
    backend = "inductor" if name in INDUCTOR else "aot_eager"
    eager = _step(name, False, backend, leaves)
    compiled = _step(name, True, backend, leaves)  # fullgraph=True: a graph break raises
    assert len(eager) == len(compiled)
    for e, c in zip(eager, compiled, strict=True):
        assert e is not None and c is not None
        # same draws, same arithmetic up to reassociation (inductor fuses and reorders sums):
        # float32 rounding over a handful of ops, far below any estimator's noise
        torch.testing.assert_close(c, e, rtol=1e-4, atol=1e-5)
