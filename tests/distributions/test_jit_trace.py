"""``torch.jit.trace`` of ``sample``/``rsample`` replays the eager draws (issue #14).

The samplers have fixed shapes and no data-dependent Python control flow (no host reads), so a
trace records one graph that, from the same RNG state, gives exactly the eager values, also for
parameter values other than the ones traced with (the graph holds no baked-in decision).
Deterministic: equality, not a tolerance.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
from seeds import seeded
from torch.distributions import Distribution

import reparam as rp

D = rp.distributions

CASES: dict[str, Callable[[torch.Tensor], Distribution]] = {
    "Gamma": lambda p: D.Gamma(p, 1.5, validate_args=False),
    "Chi2": lambda p: D.Chi2(p, validate_args=False),
    "InverseGamma": lambda p: D.InverseGamma(p, 2.0, validate_args=False),
    "Beta": lambda p: D.Beta(p, 3.0 * torch.ones_like(p), validate_args=False),
    "Dirichlet": lambda p: D.Dirichlet(
        torch.stack([p, p + 1.0, 3.0 * torch.ones_like(p)], -1), validate_args=False
    ),
    "StudentT": lambda p: D.StudentT(p, 0.2, 1.3, validate_args=False),
    "VonMises": lambda p: D.VonMises(0.5, p, validate_args=False),
}


@pytest.mark.parametrize("method", ["sample", "rsample"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_trace_replays_the_eager_draws(name: str, method: str) -> None:
    build = CASES[name]

    def draw(p: torch.Tensor) -> torch.Tensor:
        return getattr(build(p), method)((200,))

    traced_at = torch.tensor([0.3, 1.0, 2.5, 12.0])  # below 1, at 1, above 8: every regime
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python values in shapes
        traced = torch.jit.trace(draw, (traced_at,), check_trace=False)
    for p in (traced_at, torch.tensor([0.05, 4.0, 0.7, 40.0])):
        seed = seeded(11)
        torch.manual_seed(seed)
        eager = draw(p)
        torch.manual_seed(seed)
        replay = traced(p)
        assert torch.equal(eager, replay), f"{name}.{method}: traced draws differ from eager ones"
