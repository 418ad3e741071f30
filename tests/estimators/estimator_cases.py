"""Every estimator (each sampler, each baseline) on a small problem of its kind, for the
compile / torch.func / host-sync tests: ``CASES[name] = (make_estimator, family)``, and
``problem(family)`` gives ``(params, forward)`` with ``forward(*params)`` the surrogate (the
distribution built inside from the parameters, torch.distributions families only)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Categorical, Normal, OneHotCategorical

import reparam as rp
from reparam.baselines import DeltaMethod, Learned, LeaveOneOut, MovingAverage

Forward = Callable[..., Tensor]

CASES: dict[str, tuple[Callable[[], object], str]] = {
    "Pathwise": (lambda: rp.Pathwise(), "normal"),
    "Pathwise(Antithetic)": (lambda: rp.Pathwise(sampling=rp.Antithetic()), "normal"),
    "Pathwise(Stratified)": (lambda: rp.Pathwise(sampling=rp.Stratified()), "normal"),
    "Pathwise(QMC)": (lambda: rp.Pathwise(sampling=rp.QMC()), "normal"),
    "Pathwise(ImportanceSampling)": (lambda: rp.Pathwise(sampling=rp.ImportanceSampling()), "normal"),
    "ScoreFunction": (lambda: rp.ScoreFunction(), "normal"),
    "ScoreFunction(LeaveOneOut)": (lambda: rp.ScoreFunction(LeaveOneOut()), "normal"),
    "ScoreFunction(MovingAverage)": (lambda: rp.ScoreFunction(MovingAverage()), "normal"),
    "ScoreFunction(DeltaMethod)": (lambda: rp.ScoreFunction(DeltaMethod()), "normal"),
    "ScoreFunction(Learned)": (lambda: rp.ScoreFunction(Learned(nn.Linear(6, 1))), "normal"),
    "ScoreFunction(QMC)": (lambda: rp.ScoreFunction(sampling=rp.QMC()), "normal"),
    "MeasureValued": (lambda: rp.MeasureValued(), "normal"),
    "ScoreFunction(LeaveOneOut)-bernoulli": (lambda: rp.ScoreFunction(LeaveOneOut()), "bernoulli"),
    "MeasureValued-bernoulli": (lambda: rp.MeasureValued(), "bernoulli"),
    "ARM": (lambda: rp.ARM(), "bernoulli"),
    "DisARM": (lambda: rp.DisARM(), "bernoulli"),
    "ARMS": (lambda: rp.ARMS(), "bernoulli"),
    "DoubleCV": (lambda: rp.DoubleCV(), "bernoulli"),
    "REBAR": (lambda: rp.REBAR(), "bernoulli"),
    "RELAX": (lambda: rp.RELAX(), "bernoulli"),
    "RELAX-categorical": (lambda: rp.RELAX(), "categorical"),
    "VIMCO": (lambda: rp.VIMCO(), "bernoulli"),
    "Exact": (lambda: rp.Exact(), "bernoulli"),
    "GumbelSoftmax": (lambda: rp.GumbelSoftmax(0.5), "onehot"),
    "GumbelSoftmax(straight_through)": (lambda: rp.GumbelSoftmax(0.5, straight_through=True), "onehot"),
    "GumbelSoftmax(decoupled)": (
        lambda: rp.GumbelSoftmax(
            straight_through="decoupled", forward_temperature=0.75, backward_temperature=0.5
        ),
        "onehot",
    ),
    "StraightThrough": (lambda: rp.StraightThrough(), "bernoulli"),
    "IndeCateR": (lambda: rp.IndeCateR(), "categorical"),
    "ARSM": (lambda: rp.ARSM(), "categorical"),
    "CARMS": (lambda: rp.CARMS(), "onehot"),
    "UnorderedSet": (lambda: rp.UnorderedSet(), "categorical-per-variable"),
    "ScoreFunction(LeaveOneOut)-categorical": (lambda: rp.ScoreFunction(LeaveOneOut()), "categorical"),
}

NUM_SAMPLES = 4


def _normal_cost(z: Tensor) -> Tensor:
    return ((z - 1.0) ** 2).sum(-1)


def _bernoulli_cost(b: Tensor) -> Tensor:
    return ((b - 0.3) ** 2).sum(-1) + b[..., 0] * b[..., 1]


def _categorical_cost(z: Tensor) -> Tensor:
    z = z.to(torch.get_default_dtype())
    return ((z - 1.2) ** 2).sum(-1) + z[..., 0] * z[..., 1]


def _per_variable_cost(z: Tensor) -> Tensor:
    return (z.to(torch.get_default_dtype()) - 1.2) ** 2  # one cost per variable


def _onehot_cost(y: Tensor) -> Tensor:
    numbers = (y * torch.arange(3.0, dtype=y.dtype, device=y.device)).sum(-1)
    return ((numbers - 1.2) ** 2).sum(-1)


def params(family: str) -> list[Tensor]:
    """Fresh leaves for ``family``, drawn from the global generator."""
    if family == "normal":
        return [torch.randn(3).requires_grad_(True), (0.5 + torch.rand(3)).requires_grad_(True)]
    if family == "bernoulli":
        return [torch.randn(3).requires_grad_(True)]
    if family.startswith("categorical"):  # K = 4 categories: UnorderedSet draws NUM_SAMPLES distinct ones
        return [torch.randn(2, NUM_SAMPLES).requires_grad_(True)]
    return [torch.randn(2, 3).requires_grad_(True)]


def forward(estimator: object, family: str, num_samples: int = NUM_SAMPLES) -> Forward:
    """``forward(*params)``: the surrogate of ``rp.expect`` for ``family``'s problem."""

    def run(*leaves: Tensor) -> Tensor:
        if family == "normal":
            # validate_args=False: torch's argument checks read values (a sync per check);
            # they belong to the distribution's construction, not to the estimator step
            q: torch.distributions.Distribution = Normal(leaves[0], leaves[1], validate_args=False)
            f: Callable[[Tensor], Tensor] = _normal_cost
        elif family == "bernoulli":
            q, f = Bernoulli(logits=leaves[0], validate_args=False), _bernoulli_cost
        elif family == "categorical":
            q, f = Categorical(logits=leaves[0], validate_args=False), _categorical_cost
        elif family == "categorical-per-variable":
            q, f = Categorical(logits=leaves[0], validate_args=False), _per_variable_cost
        else:
            q, f = OneHotCategorical(logits=leaves[0], validate_args=False), _onehot_cost
        return rp.expect(f, q, estimator, num_samples)  # type: ignore[arg-type]

    return run
