"""Estimators by name, for the command line and ``rp.compare`` tables."""

from __future__ import annotations

from collections.abc import Callable

from reparam.baselines import DeltaMethod, LeaveOneOut, MovingAverage
from reparam.estimators.arm import ARM
from reparam.estimators.arms import ARMS
from reparam.estimators.arsm import ARSM
from reparam.estimators.base import Estimator
from reparam.estimators.carms import CARMS
from reparam.estimators.disarm import DisARM
from reparam.estimators.double_cv import DoubleCV
from reparam.estimators.exact import Exact
from reparam.estimators.gumbel_softmax import GumbelSoftmax
from reparam.estimators.indecater import IndeCateR
from reparam.estimators.measure_valued import MeasureValued
from reparam.estimators.pathwise import Pathwise
from reparam.estimators.rebar import REBAR
from reparam.estimators.relax import RELAX
from reparam.estimators.score_function import ScoreFunction
from reparam.estimators.straight_through import StraightThrough
from reparam.estimators.unordered_set import UnorderedSet
from reparam.estimators.vimco import VIMCO

EstimatorFactory = Callable[[], Estimator]

ESTIMATORS: dict[str, EstimatorFactory] = {
    "pathwise": Pathwise,
    "reinforce": ScoreFunction,
    "reinforce-ma": lambda: ScoreFunction(baseline=MovingAverage()),
    "reinforce-loo": lambda: ScoreFunction(baseline=LeaveOneOut()),
    "reinforce-delta": lambda: ScoreFunction(baseline=DeltaMethod()),
    "measure-valued": MeasureValued,
    # discrete latent variables (issue 4)
    "arm": ARM,
    "disarm": DisARM,
    "arms": ARMS,
    "double-cv": DoubleCV,
    "gumbel-softmax": lambda: GumbelSoftmax(temperature=0.5),
    "gumbel-st": lambda: GumbelSoftmax(temperature=0.5, straight_through=True),
    # forward temperature 0.75, not 1: at tau_f = 1 decoupled ST *is* gumbel-st at tau_b (the hard
    # sample does not depend on a temperature). Shah et al. 2024 find the best (tau_f, tau_b) away
    # from a single shared temperature; chosen on the discrete-VAE benchmark's validation ELBO
    # (300 steps, seed 0, tau_b = 0.5, tau_f in 0.5, 0.75, 1, 1.5, 2): against tau_f = 1, 0.75 was
    # 2.2 to 4.2 nats better on the three MNIST VAEs and within 2.0 nats on Fashion-MNIST; 0.5 lost
    # 7 to 17 nats on Fashion-MNIST, tau_f >= 1.5 lost 3 to 43 (docs/studies/discrete-vae-benchmark.md).
    # Biased: trains on draws from softmax(logits / 0.75), a sharper distribution than q.
    "gumbel-decoupled": lambda: GumbelSoftmax(
        straight_through="decoupled", forward_temperature=0.75, backward_temperature=0.5
    ),
    "straight-through": StraightThrough,
    "rebar": REBAR,
    "relax": RELAX,
    "indecater": IndeCateR,
    # categorical estimators (issue 16)
    "arsm": ARSM,
    "carms": CARMS,
    "unordered-set": UnorderedSet,
    "vimco": VIMCO,
    "exact": Exact,
}


def register_estimator(name: str, factory: EstimatorFactory) -> None:
    """Make ``factory()`` available as ``name`` on the command line."""
    if name in ESTIMATORS:
        raise ValueError(f"estimator name {name!r} is already registered")
    ESTIMATORS[name] = factory


def make_estimator(name: str) -> Estimator:
    """A fresh estimator by registered name (stateful baselines are never shared)."""
    if name not in ESTIMATORS:
        known = ", ".join(sorted(ESTIMATORS))
        raise KeyError(f"unknown estimator {name!r}; choose from: {known}")
    return ESTIMATORS[name]()
