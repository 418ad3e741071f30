"""BayesLinear as an ordinary nn.Module: Sequential, state_dict, to(), torch.compile, DDP."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from seeds import seeded
from torch import nn

from reparam.nn import BayesLinear, ELBOLoss, ScaleMixturePrior, kl_divergence


def test_plain_tensor_in_sequential_with_any_batch_shape() -> None:
    model = nn.Sequential(BayesLinear(4, 8), nn.ReLU(), BayesLinear(8, 2))
    for shape in ((4,), (3, 4), (2, 5, 4)):
        out = model(torch.randn(shape))
        assert type(out) is torch.Tensor and out.shape == (*shape[:-1], 2)


def test_default_initialisation() -> None:
    layer = BayesLinear(100, 20)
    bound = 1 / math.sqrt(100)
    assert layer.weight_mu.abs().max() <= bound and layer.weight_mu.std() > bound / 3
    torch.testing.assert_close(layer.weight_sigma, torch.full((20, 100), 0.1 * bound))
    torch.testing.assert_close(BayesLinear(3, 2, init_scale=0.05).bias_sigma, torch.full((2,), 0.05))


def test_estimator_switch_keeps_parameters_and_validates() -> None:
    layer = BayesLinear(3, 2, estimator="reparam")
    params = [p.data_ptr() for p in layer.parameters()]
    layer.estimator = "local"
    assert layer.estimator == "local" and [p.data_ptr() for p in layer.parameters()] == params
    with pytest.raises(ValueError, match="estimator must be one of"):
        layer.estimator = "dropout"
    with pytest.raises(ValueError, match="estimator"):
        BayesLinear(3, 2, estimator="Flipout")  # type: ignore[arg-type]


def test_state_dict_round_trip_and_to() -> None:
    model = nn.Sequential(BayesLinear(3, 4, prior=ScaleMixturePrior()), nn.Tanh(), BayesLinear(4, 1))
    copy = nn.Sequential(BayesLinear(3, 4, prior=ScaleMixturePrior()), nn.Tanh(), BayesLinear(4, 1))
    copy.load_state_dict(model.state_dict())
    for a, b in zip(model.state_dict().values(), copy.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert set(model[0].state_dict()) >= {"weight_mu", "weight_rho", "bias_mu", "bias_rho", "prior.scales"}
    double = model.to(torch.float64)
    assert all(t.dtype == torch.float64 for t in double.state_dict().values() if t.is_floating_point())
    out = double(torch.randn(2, 3, dtype=torch.float64))
    assert out.dtype == torch.float64 and kl_divergence(double).dtype == torch.float64


def test_mean_is_reproduced_with_fixed_seed() -> None:
    layer = BayesLinear(3, 2)
    x = torch.randn(4, 3)
    torch.manual_seed(seeded(1))
    a = layer(x)
    torch.manual_seed(seeded(1))
    torch.testing.assert_close(layer(x), a)


def test_extreme_inputs_stay_finite() -> None:
    # local reparameterization takes sqrt of a variance that is 0 for a zero input without bias:
    # the floor keeps the output and the gradient finite.
    layer = BayesLinear(3, 2, bias=False, estimator="local")
    out = layer(torch.zeros(2, 3))
    out.sum().backward()
    assert torch.isfinite(out).all() and all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_bad_arguments_and_inputs() -> None:
    with pytest.raises(ValueError, match="in_features"):
        BayesLinear(0, 2)
    with pytest.raises(ValueError, match="out_features"):
        BayesLinear(2, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init_scale"):
        BayesLinear(2, 2, init_scale=-1.0)
    with pytest.raises(TypeError, match="prior"):
        BayesLinear(2, 2, prior=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expects input of shape \(\*, 3\)"):
        BayesLinear(3, 2)(torch.randn(4, 5))


@pytest.mark.parametrize("estimator", ["reparam", "local", "flipout"])
def test_torch_compile_full_graph(estimator: str) -> None:
    # fullgraph=True fails on any graph break; aot_eager traces forward and backward through
    # AOTAutograd without generating C++ (inductor works too, but compiles for minutes on 2 cores).
    torch._dynamo.reset()
    model = nn.Sequential(
        BayesLinear(4, 8, estimator=estimator), nn.ReLU(), BayesLinear(8, 3, estimator=estimator)
    )
    criterion = ELBOLoss(100)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return criterion(model(x), y, kl_divergence(model))

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    torch.manual_seed(seeded(3))
    loss = compiled(x, y)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(seeded(3))
    eager = step(x, y)
    eager.backward()
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, eager)  # same seed, same draws: same loss and gradients
    for g, p in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)


def test_distributed_data_parallel_gloo(tmp_path: Path) -> None:
    # One-process gloo group: DDP must wrap the model, all-reduce every parameter's gradient (all
    # of mu and rho are used in forward) and keep kl_divergence working through the wrapper.
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    # a file store (no TCP port to race for with other processes) and a timeout, so it cannot hang
    store = f"file://{tmp_path / 'store'}"
    dist.init_process_group("gloo", init_method=store, rank=0, world_size=1, timeout=timedelta(seconds=60))
    try:
        for estimator in ("reparam", "local", "flipout"):
            model = nn.Sequential(BayesLinear(4, 6, estimator=estimator), nn.ReLU(), BayesLinear(6, 2))
            ddp = DistributedDataParallel(model)
            x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
            loss = F.cross_entropy(ddp(x), y) + kl_divergence(ddp) / 100
            loss.backward()
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    finally:
        dist.destroy_process_group()
