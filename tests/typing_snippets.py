"""Static protocol checks: ``mypy`` must accept every line of this file (run by
``tests/test_typing_protocols.py`` with the project's settings from ``pyproject.toml``).

Each public estimator is assigned to :class:`reparam.Estimator`, each baseline to
:class:`reparam.baselines.Baseline` and each sampler to ``Sampler``, and each is passed where the
library takes one, so a signature drifting away from its protocol fails the type check. The
file also runs (the test imports it), so every construction here is a real one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Distribution, Normal
from typing_extensions import assert_type

import reparam as rp
from reparam.baselines import Baseline, ControlVariate, DeltaMethod, Learned, LeaveOneOut, MovingAverage
from reparam.estimators.sampling import Sampler

# Every estimator class satisfies the Estimator protocol.
ESTIMATORS: list[rp.Estimator] = [
    rp.Pathwise(),
    rp.Pathwise(sampling=rp.Antithetic()),
    rp.ScoreFunction(),
    rp.ScoreFunction(LeaveOneOut()),
    rp.ScoreFunction(baseline=MovingAverage(), sampling=rp.QMC()),
    rp.MeasureValued(),
    rp.ARM(),
    rp.DisARM(),
    rp.Exact(),
    rp.GumbelSoftmax(),
    rp.IndeCateR(),
    rp.StraightThrough(),
    rp.VIMCO(),
    rp.REBAR(),
    rp.RELAX(),
]

pathwise: rp.Estimator = rp.Pathwise()
rebar: rp.Estimator = rp.REBAR()  # an nn.Module: its declared __call__ is what is checked
relax: rp.Estimator = rp.RELAX(temperature=0.3)

# Every baseline satisfies the Baseline protocol, and ScoreFunction takes each of them.
BASELINES: list[Baseline] = [
    LeaveOneOut(),
    MovingAverage(decay=0.8),
    DeltaMethod(),
    Learned(nn.Linear(1, 1), features=lambda q: torch.zeros(1, 1)),
]
SCORE_FUNCTIONS: list[rp.ScoreFunction] = [rp.ScoreFunction(b) for b in BASELINES]
loo: Baseline = LeaveOneOut()
loo_min_samples: int = loo.min_samples

# Every sampler satisfies the Sampler protocol.
SAMPLERS: list[Sampler] = [rp.Antithetic(), rp.Stratified(), rp.QMC(), rp.ImportanceSampling()]


def cost(z: Tensor) -> Tensor:
    return (z - 1.0) ** 2


def estimate(estimator: rp.Estimator, q: Distribution) -> Tensor:
    """The protocol's call returns a Tensor (not Any), and ``rp.expect`` takes any estimator."""
    assert_type(estimator(cost, q, 4), Tensor)
    return rp.expect(cost, q, estimator, num_samples=4)


def control(baseline: Baseline, costs: Tensor, z: Tensor, q: Distribution) -> ControlVariate:
    return baseline(costs, z, q, cost)


def run() -> None:
    """Call a few of them, so that the module is exercised at run time too."""
    normal = Normal(torch.zeros(3, requires_grad=True), torch.ones(3))
    bits = Bernoulli(logits=torch.zeros(3, requires_grad=True))
    assert_type(rp.REBAR()(cost, bits, 2), Tensor)
    for estimator in (pathwise, rp.ScoreFunction(LeaveOneOut())):
        estimate(estimator, normal)
    for estimator in (rebar, relax, rp.DisARM()):
        estimate(estimator, bits)
    z = normal.sample((4,))
    assert control(loo, cost(z), z, normal).value.shape == (4, 3)
