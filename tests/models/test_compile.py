"""The models' training steps compile with the recommended ``rp.compile`` (``torch.compile``
with ``fullgraph=True``; inductor with ``fallback_random``) and give the eager step's objective
and gradients on the same random draws.

Steps: ``VAE.objective`` (ELBO with Pathwise, ELBO with STL, IWAE with the standard, STL and
DReG gradients), the Bernoulli ``DiscreteVAE.loss`` with DisARM and with RLOO
(``ScoreFunction(LeaveOneOut())``), and ``BayesianLogisticRegression.elbo`` (mean-field and
full-rank). ``fullgraph=True`` makes any graph break an error. The ``aot_eager`` backend is used
(dynamo's tracing and AOT autograd's backward capture, without inductor's code generation), and
one step compiles with inductor (``rp.compile``'s ``fallback_random``: it draws with eager's
generator).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import torch._dynamo
from seeds import seeded
from torch import Tensor, nn

import reparam as rp
from reparam.baselines import LeaveOneOut
from reparam.models import VAE, BayesianLogisticRegression
from reparam.models.discrete_vae import DiscreteVAE, DiscreteVAEConfig

Step = Callable[[nn.Module, Tensor], Tensor]


pytestmark = pytest.mark.usefixtures("validation_off_as_under_compile")  # as torch.compile runs


def _vae() -> nn.Module:
    return VAE(input_dim=12, latent_dim=3, hidden=(8, 8))


def _dvae() -> nn.Module:
    return DiscreteVAE(DiscreteVAEConfig(arch="nonlinear", latent=4, hidden=8, data_dim=12))


def _vae_step(objective: str, k: int, gradient: str) -> Step:
    return lambda model, x: model.objective(x, objective, k=k, gradient=gradient).mean()  # type: ignore[operator]


def _dvae_step(estimator: Callable[[], object]) -> Step:
    return lambda model, x: model.loss(x, estimator(), 3)[0]  # type: ignore[operator]


def _blr_step(model: nn.Module, x: Tensor) -> Tensor:
    labels = (x[:, 0] > 0).to(x.dtype)
    return model.elbo(x, labels, num_samples=4, data_scale=10.0)  # type: ignore[operator,no-any-return]


CASES: dict[str, tuple[Callable[[], nn.Module], Step, tuple[int, ...], bool]] = {
    # name: (model, step, input shape, binary input)
    "vae-elbo": (_vae, _vae_step("elbo", 2, "standard"), (5, 12), False),
    "vae-elbo-stl": (_vae, _vae_step("elbo", 2, "stl"), (5, 12), False),
    "vae-iwae": (_vae, _vae_step("iwae", 3, "standard"), (5, 12), False),
    "vae-iwae-stl": (_vae, _vae_step("iwae", 3, "stl"), (5, 12), False),
    "vae-iwae-dreg": (_vae, _vae_step("iwae", 3, "dreg"), (5, 12), False),
    "discrete-vae-disarm": (_dvae, _dvae_step(rp.DisARM), (5, 12), True),
    "discrete-vae-rloo": (_dvae, _dvae_step(lambda: rp.ScoreFunction(LeaveOneOut())), (5, 12), True),
    "logistic-mean-field": (lambda: BayesianLogisticRegression(4), _blr_step, (6, 4), False),
    "logistic-full-rank": (
        lambda: BayesianLogisticRegression(4, family="full-rank"), _blr_step, (6, 4), False
    ),
}


def _run(model: nn.Module, step: Step, x: Tensor, compiled: bool, backend: str) -> list[Tensor]:
    """Objective and parameter gradients of two consecutive steps (fresh draws each)."""
    model = copy.deepcopy(model)

    def run(inputs: Tensor) -> Tensor:
        return step(model, inputs)

    fn = rp.compile(run, backend=backend) if compiled else run  # fullgraph=True
    torch.manual_seed(seeded(31))
    out: list[Tensor] = []
    for _ in range(2):
        model.zero_grad(set_to_none=True)
        value = fn(x)
        value.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads
        out += [value.detach(), *grads]
    return out


BACKENDS = [(name, "aot_eager") for name in sorted(CASES)] + [
    # inductor's code generation takes ~30 s here on a loaded 2-core machine
    pytest.param("vae-iwae-dreg", "inductor", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "backend"), BACKENDS)
def test_compiled_model_step_matches_eager(name: str, backend: str) -> None:
    make, step, shape, binary = CASES[name]
    torch.manual_seed(seeded(7))
    model = make()
    x = torch.rand(shape).round() if binary else torch.rand(shape)
    if name.startswith("logistic"):
        x = torch.randn(shape)
    torch._dynamo.reset()
    eager = _run(model, step, x, False, backend)
    compiled = _run(model, step, x, True, backend)  # fullgraph=True: a graph break raises
    assert len(eager) == len(compiled)
    for e, c in zip(eager, compiled, strict=True):
        # same draws, same arithmetic up to reassociation (inductor fuses and reorders sums):
        # float32 rounding over a few hundred ops, far below the estimators' noise
        torch.testing.assert_close(c, e, rtol=1e-4, atol=1e-5)
