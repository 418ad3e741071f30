"""rp.expect: automatic choice, composition (modules, optimizers, nesting) and input errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Gamma, Normal

import reparam as rp
from reparam.baselines import LeaveOneOut, MovingAverage
from reparam.expect import default_estimator


def test_default_estimator_choice() -> None:
    normal = Normal(torch.zeros(2), torch.ones(2))
    bern = Bernoulli(probs=torch.full((2,), 0.5))
    assert isinstance(default_estimator(normal, 1), rp.Pathwise)
    loo = default_estimator(bern, 4)
    assert isinstance(loo, rp.ScoreFunction) and isinstance(loo.baseline, LeaveOneOut)
    ma = default_estimator(bern, 1)
    assert isinstance(ma, rp.ScoreFunction) and isinstance(ma.baseline, MovingAverage)


def test_design_example_runs_and_fills_gradients() -> None:
    loc = torch.zeros(3, requires_grad=True)
    log_scale = torch.zeros(3, requires_grad=True)
    q = Normal(loc, log_scale.exp())
    value = rp.expect(lambda z: ((z - 2.0) ** 2).sum(-1), q, estimator=rp.Pathwise(), num_samples=16)
    value.backward()
    assert value.shape == ()
    assert loc.grad is not None and log_scale.grad is not None


def test_optimizer_drives_loc_to_minimiser() -> None:
    # min_mu E_{N(mu, 0.1)}[(z - 3)^2] has its minimum at mu = 3.
    loc = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([loc], lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        rp.expect(lambda z: (z - 3.0) ** 2, Normal(loc, 0.1), num_samples=8).backward()
        opt.step()
    assert abs(loc.item() - 3.0) < 0.05


def test_f_with_module_parameters_gets_gradients() -> None:
    layer = nn.Linear(2, 1)
    encoder = nn.Linear(2, 2)
    x = torch.randn(5, 2)
    q = Normal(encoder(x), 1.0)  # batch (5, 2), from an encoder
    value = rp.expect(lambda z: layer(z).squeeze(-1).pow(2).sum(-1), q, num_samples=3)
    value.backward()
    assert layer.weight.grad is not None and encoder.weight.grad is not None


def test_nested_expectations() -> None:
    # E_{z~N(mu,1)} E_{y~N(z,1)}[y^2] = mu^2 + 2, so d/dmu = 2 mu = 1 at mu = 0.5.
    mu = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)

    def outer(z: torch.Tensor) -> torch.Tensor:
        return rp.expect(lambda y: y**2, Normal(z, 1.0), num_samples=4)

    value = rp.expect(outer, Normal(mu, 1.0), num_samples=20000)
    value.backward()
    # per-sample gradient 2 z + noise of variance ~ 4 + 1: standard error < 0.02.
    assert abs(mu.grad.item() - 1.0) < 0.1
    assert abs(value.item() - 2.25) < 0.1


def test_per_element_costs_return_batch_prefix() -> None:
    q = Normal(torch.zeros(4, 3), 1.0)
    value = rp.expect(lambda z: z.sum(-1), q, num_samples=2)
    assert value.shape == (4,)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"num_samples": 0}, ValueError, "num_samples must be >= 1"),
        ({"num_samples": 2.0}, TypeError, "num_samples must be an int"),
        ({"num_samples": True}, TypeError, "num_samples must be an int"),
        ({"estimator": rp.Pathwise}, TypeError, r"write estimator=Pathwise\(\)"),
        ({"estimator": "pathwise"}, TypeError, "estimator must be None or an estimator"),
    ],
)
def test_bad_arguments(kwargs, error, pattern) -> None:
    q = Normal(torch.zeros(2), 1.0)
    with pytest.raises(error, match=pattern):
        rp.expect(lambda z: z.sum(-1), q, **kwargs)


def test_q_must_be_a_distribution() -> None:
    with pytest.raises(TypeError, match="q must be a torch.distributions.Distribution"):
        rp.expect(lambda z: z, torch.zeros(2))  # type: ignore[arg-type]


def test_f_must_be_callable() -> None:
    with pytest.raises(TypeError, match="f must be a callable"):
        rp.expect(3.0, Normal(0.0, 1.0))  # type: ignore[arg-type]


def test_f_output_without_sample_dim() -> None:
    q = Normal(torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="leading dim must be the sample dim"):
        rp.expect(lambda z: z.sum(), q, num_samples=4)
    with pytest.raises(ValueError, match="prefix of q.batch_shape"):
        rp.expect(lambda z: z.sum(-1, keepdim=True).expand(4, 7), q, num_samples=4)
    with pytest.raises(TypeError, match="must return a torch.Tensor"):
        rp.expect(lambda z: 1.0, q, num_samples=4)


def test_pathwise_on_discrete_suggests_alternatives() -> None:
    with pytest.raises(TypeError, match=r"rp.ScoreFunction\(\).*rp.distributions.Implicit"):
        rp.expect(lambda z: z, Bernoulli(probs=torch.tensor(0.5)), rp.Pathwise())


def test_leave_one_out_needs_two_samples() -> None:
    q = Bernoulli(probs=torch.tensor(0.5))
    with pytest.raises(ValueError, match="num_samples >= 2"):
        rp.expect(lambda z: z, q, rp.ScoreFunction(LeaveOneOut()), num_samples=1)


def test_estimator_that_does_not_support_q() -> None:
    q = Gamma(torch.tensor(2.0), torch.tensor(1.0))
    with pytest.raises(TypeError, match="does not support Gamma"):
        rp.expect(lambda z: z, q, rp.MeasureValued())


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_non_floating_costs_are_refused_with_the_fix(dtype) -> None:
    q = Normal(torch.zeros(2, requires_grad=True), 1.0)
    for estimator in (rp.Pathwise(), rp.ScoreFunction()):
        pattern = rf"costs of dtype {dtype}; return real floating costs.*\.float\(\)"
        with pytest.raises(TypeError, match=pattern):
            rp.expect(lambda z: (z > 0).to(dtype), q, estimator, num_samples=4)


def test_estimator_returning_a_non_tensor_is_named() -> None:
    q = Normal(torch.zeros(2, requires_grad=True), 1.0)

    def lazy(f, q, num_samples):
        return 3.0

    with pytest.raises(TypeError, match=r"estimator <function .*lazy.* returned float, not a torch.Tensor"):
        rp.expect(lambda z: z, q, lazy)
