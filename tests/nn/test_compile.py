"""Every Bayesian layer compiles with the recommended ``rp.compile`` (``torch.compile`` with
``fullgraph=True``; inductor with ``fallback_random``) and the compiled training step (forward,
``kl_divergence()``, backward) gives the eager step's output, KL and gradients on the same random
draws.

``fullgraph=True`` turns any graph break into an error, so compiling is the graph-break check.
Both runs start from the same seed and the same parameters, so they draw the same noise. Most
cases use the ``aot_eager`` backend (dynamo's tracing and AOT autograd's capture of the backward,
without inductor's seconds-long code generation); one model compiles with inductor, where
``rp.compile``'s ``fallback_random`` option makes the graph draw with eager's generator, so that
the draws match.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import torch._dynamo
from seeds import seeded
from torch import Tensor, nn
from torch.distributions import Normal, StudentT

import reparam as rp
from reparam.nn import BayesConv1d, BayesConv2d, BayesLinear

pytestmark = pytest.mark.usefixtures("validation_off_as_under_compile")  # as torch.compile runs


LAYERS: dict[str, tuple[Callable[..., nn.Module], tuple[int, ...]]] = {
    "BayesLinear": (lambda **kw: BayesLinear(6, 5, **kw), (4, 6)),
    "BayesConv1d": (lambda **kw: BayesConv1d(3, 4, 3, padding=1, **kw), (2, 3, 7)),
    "BayesConv2d": (
        lambda **kw: BayesConv2d(3, 4, 3, stride=2, padding=1, padding_mode="circular", **kw),
        (2, 3, 6, 5),
    ),
}


def _run(
    layer: nn.Module, x: Tensor, compiled: bool, backend: str, steps: int = 1
) -> list[Tensor]:
    """Output, KL and every gradient (parameters and input) of ``steps`` consecutive steps."""
    layer = copy.deepcopy(layer)

    def step(inputs: Tensor) -> tuple[Tensor, Tensor]:
        y = layer(inputs)
        kl = rp.nn.kl_divergence(layer)
        return y, kl

    run = rp.compile(step, backend=backend) if compiled else step  # fullgraph=True
    torch.manual_seed(seeded(21))
    out: list[Tensor] = []
    for _ in range(steps):
        layer.zero_grad(set_to_none=True)
        inputs = x.clone().requires_grad_(True)
        y, kl = run(inputs)
        (y.square().mean() + 1e-2 * kl).backward()
        assert inputs.grad is not None
        out += [y.detach(), kl.detach(), inputs.grad]
        out += [p.grad for p in layer.parameters() if p.grad is not None]
    return out


def _check(layer: nn.Module, x: Tensor, backend: str = "aot_eager", steps: int = 1) -> None:
    torch._dynamo.reset()
    eager = _run(layer, x, False, backend, steps)
    compiled = _run(layer, x, True, backend, steps)  # fullgraph=True: a graph break raises
    assert len(eager) == len(compiled) and len(eager) >= 4
    for e, c in zip(eager, compiled, strict=True):
        # same draws, same arithmetic up to reassociation (inductor fuses and reorders sums):
        # float32 rounding over a few dozen ops, far below the layers' noise
        torch.testing.assert_close(c, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("estimator", ["reparam", "local", "flipout"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_compiled_layer_step_matches_eager(name: str, estimator: str, bias: bool) -> None:
    make, shape = LAYERS[name]
    torch.manual_seed(seeded(3))
    layer = make(estimator=estimator, bias=bias)
    _check(layer, torch.randn(shape))


@pytest.mark.slow  # inductor's code generation: ~20-30 s on a loaded 2-core machine
def test_inductor_step_matches_eager() -> None:
    # one inductor compilation (seconds) covering the three modes, convolutions (whose output
    # layout inductor chooses itself: the layers draw noise by shape, not by layout) and a
    # linear layer
    torch.manual_seed(seeded(3))
    model = nn.Sequential(
        BayesConv2d(3, 4, 3, padding=1, estimator="local"),
        nn.Tanh(),
        BayesConv2d(4, 2, 3, stride=2, estimator="flipout"),
        nn.Flatten(),
        BayesLinear(8, 3, estimator="reparam"),
    )
    _check(model, torch.randn(2, 3, 6, 5), backend="inductor")


@pytest.mark.parametrize("estimator", ["reparam", "local", "flipout"])
def test_monte_carlo_distribution_prior_compiles(estimator: str) -> None:
    # StudentT has no closed-form KL against a Normal: the KL is -H[q] - log p(w) at the forward
    # pass's own weight sample (reparam, flipout) or a fresh draw (local). Two steps: the kept
    # noise is consumed by the KL within each step.
    torch.manual_seed(seeded(3))
    layer = BayesLinear(6, 5, estimator=estimator, prior=StudentT(3.0, 0.0, 0.5))  # type: ignore[arg-type]
    assert isinstance(layer.prior, rp.nn.DistributionPrior) and not layer.prior.analytic
    _check(layer, torch.randn(4, 6), steps=2)


def test_closed_form_distribution_prior_and_scale_mixture_compile() -> None:
    torch.manual_seed(seeded(3))
    model = nn.Sequential(
        BayesLinear(6, 5, estimator="reparam", prior=Normal(0.3, 2.0)),
        nn.Tanh(),
        BayesLinear(5, 3, estimator="flipout", prior=rp.nn.ScaleMixturePrior(num_samples=2)),
    )
    first = model[0]
    assert isinstance(first, BayesLinear) and isinstance(first.prior, rp.nn.DistributionPrior)
    assert first.prior.analytic
    _check(model, torch.randn(4, 6))


def test_posterior_mean_paths_compile_and_switch() -> None:
    torch.manual_seed(seeded(3))
    model = nn.Sequential(BayesLinear(6, 5, estimator="flipout"), nn.Tanh(), BayesConv1d(1, 2, 3))
    x = torch.randn(4, 6)

    def deterministic(inputs: Tensor) -> Tensor:
        with rp.nn.posterior_mean(model):  # the context manager inside the compiled region
            out: Tensor = model(inputs).sum()
        return out

    torch._dynamo.reset()
    run = torch.compile(lambda inputs: model(inputs).sum(), fullgraph=True, backend="aot_eager")
    inside = torch.compile(deterministic, fullgraph=True, backend="aot_eager")
    sampled = run(x.unsqueeze(1))
    with rp.nn.posterior_mean(model):
        mean_out = run(x.unsqueeze(1))  # the flag is guarded: a second graph, not the sampling one
        eager_mean = model(x.unsqueeze(1)).sum()
    torch.testing.assert_close(mean_out, eager_mean)
    torch.testing.assert_close(inside(x.unsqueeze(1)), eager_mean)
    assert not any(layer.posterior_mean for layer in model if isinstance(layer, BayesLinear))
    # back to sampling after the block: the compiled step draws again (equal only with
    # probability 0 in float32)
    assert not torch.equal(run(x.unsqueeze(1)), eager_mean)
    assert not torch.equal(sampled, eager_mean)
    # use_mean(True) on every layer, with the full step (KL and backward) compiled
    for layer in model:
        if isinstance(layer, rp.nn.BayesLayer):
            layer.use_mean(True)
    _check(model, x.unsqueeze(1))
