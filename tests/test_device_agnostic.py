"""``rp.nn``, ``rp.vi`` and ``rp.models`` run wherever their inputs are, keep their dtype, and
take no host syncs per training step (issue #14, points 1, 2 and 5).

Devices. There is no GPU here, so the ``meta`` device stands in for one: a meta tensor has a
shape, a dtype and a device but no data, and any op that mixes it with a CPU tensor (other
than a 0-dim CPU scalar, which CUDA kernels accept too) raises "... is not on the expected
device meta", while any read of a value (``.item()``, ``bool``, data-dependent shapes) raises
too. So a step that completes on meta made every tensor on its inputs' device and read no
value. Everything runs in float64, so a tensor created in the default float32 dtype shows up as
a dtype change of the outputs, which the tests check as well.

Syncs: :mod:`sync_counter` counts host reads on CPU tensors (see its docstring).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest
import torch
from sync_counter import count_syncs
from torch import Tensor, nn
from torch.distributions import Independent, Laplace, Normal, StudentT

import reparam as rp
import reparam.nn as bnn
from reparam.models import VAE, BayesianLogisticRegression, DiscreteVAE, DiscreteVAEConfig
from reparam.models import bnn as bnn_models
from reparam.models.policy import (
    LQR,
    deterministic_objective,
    expected_cost,
    linear_gaussian_policy,
    policy_objective,
    reward_to_go_objective,
)
from reparam.vi import FullRankGaussian, LowRankGaussian, MeanFieldGaussian, elbo, fit, iwae_bound

META = torch.device("meta")
F64 = torch.float64
ESTIMATORS = ("reparam", "local", "flipout")


def _on(device: torch.device, dtype: torch.dtype, *tensors: Tensor) -> None:
    for t in tensors:
        assert t.device == device, f"tensor on {t.device}, expected {device}"
        assert t.dtype == dtype, f"tensor in {t.dtype}, expected {dtype}"


def _grads_on(module: nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads, "no gradient reached the parameters"
    _on(device, dtype, *grads)


# -- rp.nn ---------------------------------------------------------------------------------------


def _layers(device: torch.device | None, dtype: torch.dtype, estimator: str) -> list[bnn.BayesLayer]:
    kw = {"device": device, "dtype": dtype, "estimator": estimator}
    return [
        bnn.BayesLinear(4, 3, **kw),  # type: ignore[arg-type]
        bnn.BayesConv1d(2, 3, 3, padding=1, **kw),  # type: ignore[arg-type]
        bnn.BayesConv2d(2, 3, 3, padding=1, padding_mode="reflect", **kw),  # type: ignore[arg-type]
    ]


_INPUT_SHAPES = ((5, 4), (5, 2, 6), (5, 2, 6, 6))


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize(
    "prior",
    [None, bnn.ScaleMixturePrior(), Normal(0.0, 2.0), Laplace(0.0, 0.5), StudentT(3.0, 0.0, 1.0)],
    ids=["normal", "scale-mixture", "torch-normal", "torch-laplace-mc", "torch-studentt-mc"],
)
def test_layers_created_on_meta_train_there(estimator: str, prior: object) -> None:
    for layer, shape in zip(_layers(META, F64, estimator), _INPUT_SHAPES, strict=True):
        if prior is not None:
            layer = type(layer)(*_args(layer), estimator=estimator, prior=prior, device=META, dtype=F64)  # type: ignore[arg-type]
        _on(META, F64, *layer.parameters(), *layer.buffers())
        y = layer(torch.randn(shape, dtype=F64, device=META))
        loss = y.square().mean() + layer.kl_divergence() / 100
        _on(META, F64, y, loss)
        loss.backward()
        _grads_on(layer, META, F64)
        with bnn.posterior_mean(layer):
            _on(META, F64, layer(torch.randn(shape, dtype=F64, device=META)))


def _args(layer: bnn.BayesLayer) -> tuple[object, ...]:
    if isinstance(layer, bnn.BayesLinear):
        return (layer.in_features, layer.out_features)
    conv = layer
    return (conv.in_channels, conv.out_channels, conv.kernel_size, 1, 1)  # type: ignore[attr-defined]


def test_moved_layers_and_bayesianized_models_run_on_meta() -> None:
    model = bnn_models.build("cnn", 64, 10, "flipout").to(device=META, dtype=F64)
    deterministic = nn.Sequential(nn.Linear(3, 4, device=META, dtype=F64))
    converted = bnn.bayesianize(deterministic, prior=Laplace(0.0, 1.0))
    _on(META, F64, *converted.parameters())
    x, labels = torch.randn(6, 64, dtype=F64, device=META), torch.zeros(6, dtype=torch.long, device=META)
    criterion = bnn.ELBOLoss(dataset_size=100)
    loss = criterion(model(x), labels, model)
    _on(META, F64, loss)
    loss.backward()
    _grads_on(model, META, F64)
    draws = bnn.predict_samples(model, x, num_samples=3)
    prediction = bnn.classification_uncertainty(draws)
    _on(META, F64, prediction.probs, prediction.mutual_information)
    regression = bnn.regression_uncertainty(torch.randn(3, 6, 2, dtype=F64, device=META))
    _on(META, F64, regression.mean, regression.total_variance)
    bins = bnn.calibration_bins(prediction.probs, labels, num_bins=5)
    _on(META, F64, bins.edges, bins.counts, bins.accuracy, bins.confidence)
    assert "?" in repr(bnn.BayesLinear(2, 2, device=META))  # repr reads no values


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_layers_keep_their_dtype(estimator: str, dtype: torch.dtype) -> None:
    for layer, shape in zip(_layers(None, dtype, estimator), _INPUT_SHAPES, strict=True):
        if dtype == torch.float16 and not isinstance(layer, bnn.BayesLinear):
            continue  # CPU has no float16 convolution kernel
        y = layer(torch.randn(shape, dtype=dtype))
        kl = layer.kl_divergence()
        (y.float().square().mean() + kl.float()).backward()
        _on(torch.device("cpu"), dtype, y, kl, *(p.grad for p in layer.parameters()))  # type: ignore[misc]


# -- rp.vi ---------------------------------------------------------------------------------------


def _normal(loc: Tensor | float, scale: Tensor | float) -> Normal:
    # the tests' own distributions skip argument validation (which reads values on the host)
    return Normal(loc, scale, validate_args=False)


def _log_likelihood(x: Tensor) -> Callable[[Tensor], Tensor]:
    return lambda z: _normal(z, 1.0).log_prob(x).sum(-1)


FAMILIES = [
    lambda device, dtype: MeanFieldGaussian(3, device=device, dtype=dtype),
    lambda device, dtype: FullRankGaussian(3, device=device, dtype=dtype),
    lambda device, dtype: LowRankGaussian(3, rank=2, device=device, dtype=dtype),
]


@pytest.mark.parametrize("make_family", FAMILIES, ids=["mean-field", "full-rank", "low-rank"])
@pytest.mark.parametrize(("kl", "stl"), [("analytic", False), ("mc", False), ("analytic", True)])
def test_vi_elbo_on_meta(make_family: Callable[..., nn.Module], kl: str, stl: bool) -> None:
    family = make_family(META, F64)
    _on(META, F64, *family.parameters())
    x = torch.randn(3, dtype=F64, device=META)
    prior = Independent(_normal(torch.zeros(3, dtype=F64, device=META), 2.0), 1)
    for with_prior in (True, False):
        log_joint = _log_likelihood(x)
        if not with_prior:
            log_joint = lambda z, ll=log_joint: ll(z) + prior.log_prob(z)  # noqa: E731
        value = elbo(log_joint, family(), rp.Pathwise(), 4, prior if with_prior else None, kl, 1.0, stl)  # type: ignore[arg-type]
        _on(META, F64, value)
        value.backward()
    _grads_on(family, META, F64)


@pytest.mark.parametrize("gradient", ["standard", "stl", "dreg"])
def test_iwae_bound_on_meta(gradient: str) -> None:
    loc = torch.zeros(4, 2, dtype=F64, device=META, requires_grad=True)
    q = Independent(_normal(loc, 1.0), 1)
    x = torch.randn(4, 2, dtype=F64, device=META)
    def log_joint(z: Tensor) -> Tensor:
        return _normal(z, 1.0).log_prob(x).sum(-1) - 0.5 * z.square().sum(-1)

    bound = iwae_bound(log_joint, q, 5, gradient)  # type: ignore[arg-type]
    _on(META, F64, bound)
    bound.sum().backward()
    _on(META, F64, loc.grad)  # type: ignore[arg-type]


@pytest.fixture
def no_loss_readout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # fit records every loss as a Python float (one read per step, by design): on meta there is
    # no value to read, so the recording is stubbed and everything else runs on meta
    monkeypatch.setattr(sys.modules["reparam.vi.fit"], "check_finite", lambda loss, step: 0.0)
    yield


def test_fit_runs_on_meta_with_minibatches(no_loss_readout: None) -> None:
    data = torch.randn(20, 3, dtype=F64, device=META)
    family = MeanFieldGaussian(3, device=META, dtype=F64)
    prior = Independent(_normal(torch.zeros(3, dtype=F64, device=META), 1.0), 1)

    def log_likelihood(z: Tensor, rows: Tensor) -> Tensor:
        return _normal(z.unsqueeze(-2), 1.0).log_prob(rows).sum((-1, -2))

    result = fit(log_likelihood, family, 3, prior=prior, data=data, batch_size=5, progress=False)
    assert result.q is not None
    _on(META, F64, result.q.mean, *family.parameters())


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_vi_keeps_the_dtype(dtype: torch.dtype) -> None:
    family = MeanFieldGaussian(3, dtype=dtype)
    x = torch.randn(3, dtype=dtype)
    prior = Independent(_normal(torch.zeros(3, dtype=dtype), torch.ones(3, dtype=dtype)), 1)
    value = elbo(_log_likelihood(x), family(), rp.Pathwise(), 4, prior)
    value.backward()
    _on(torch.device("cpu"), dtype, value, *(p.grad for p in family.parameters()))  # type: ignore[misc]


# -- rp.models -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("objective", "gradient"), [("elbo", "standard"), ("elbo", "stl"), ("iwae", "dreg")])
def test_vae_step_on_meta(objective: str, gradient: str) -> None:
    for likelihood in ("bernoulli", "gaussian"):
        model = VAE(input_dim=6, latent_dim=2, hidden=(5,), likelihood=likelihood).to(device=META, dtype=F64)
        x = torch.rand(4, 6, dtype=F64, device=META)
        value = model.objective(x, objective, k=3, gradient=gradient)
        _on(META, F64, value)
        (-value.mean()).backward()
        _grads_on(model, META, F64)
        _on(META, F64, model.log_marginal(x, k=4, chunk=2))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_vae_keeps_the_dtype(dtype: torch.dtype) -> None:
    model = VAE(input_dim=6, latent_dim=2, hidden=(5,)).to(dtype)
    value = model.objective(torch.rand(4, 6, dtype=dtype), "iwae", k=3, gradient="dreg")
    (-value.mean()).backward()
    _on(torch.device("cpu"), dtype, value)
    _grads_on(model, torch.device("cpu"), dtype)


@pytest.mark.parametrize("estimator", [rp.ScoreFunction(), rp.DisARM(), rp.VIMCO()], ids=repr)
def test_discrete_vae_step_on_meta(estimator: rp.Estimator) -> None:
    config = DiscreteVAEConfig(arch="nonlinear", latent=3, hidden=4, data_dim=6)
    model = DiscreteVAE(config).to(device=META, dtype=F64)
    x = torch.rand(5, 6, dtype=F64, device=META)
    loss, bound = model.loss(x, estimator, num_samples=2)
    _on(META, F64, loss, bound)
    loss.backward()
    _grads_on(model, META, F64)


@pytest.mark.parametrize("family", ["mean-field", "full-rank", "low-rank"])
def test_logistic_regression_elbo_on_meta(family: str) -> None:
    model = BayesianLogisticRegression(4, family=family, dtype=F64).to(META)
    x, y = torch.randn(8, 4, dtype=F64, device=META), torch.zeros(8, dtype=F64, device=META)
    value = model.elbo(x, y, rp.Pathwise(), num_samples=3, data_scale=10.0)
    _on(META, F64, value, model.kl(), model.predict_proba(x, num_samples=3))
    value.backward()
    _grads_on(model, META, F64)


def _lqr(device: torch.device) -> LQR:
    return LQR(horizon=4, dtype=F64, device=device)


def test_lqr_policy_objectives_on_meta() -> None:
    task = _lqr(META)
    x0 = task.initial_state(3)
    _on(META, F64, x0)
    policy = linear_gaussian_policy(2, 1, std=0.5).to(device=META, dtype=F64)
    estimators = [rp.Pathwise(), rp.ScoreFunction(baseline=rp.baselines.LeaveOneOut())]
    objectives = [lambda e=e: policy_objective(task, policy, x0, e, 2) for e in estimators]
    objectives += [
        lambda: reward_to_go_objective(task, policy, x0, 2, rp.baselines.LeaveOneOut()),
        lambda: deterministic_objective(task, policy, x0),
    ]
    for objective in objectives:
        policy.zero_grad()
        value = objective()
        _on(META, F64, value)
        value.backward()
        _grads_on(policy, META, F64)
    gain = torch.zeros(1, 2, dtype=F64, device=META, requires_grad=True)
    _on(META, F64, expected_cost(task, gain, 0.5))


# -- host syncs per training step ------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("prior", [None, Laplace(0.0, 0.5)], ids=["normal", "torch-laplace-mc"])
def test_bayes_layer_step_takes_no_host_sync(estimator: str, prior: object) -> None:
    model = nn.Sequential(
        bnn.BayesConv2d(1, 2, 3, estimator=estimator, prior=prior),  # type: ignore[arg-type]
        nn.Flatten(),
        bnn.BayesLinear(2 * 4 * 4, 3, estimator=estimator, prior=prior),  # type: ignore[arg-type]
    )
    criterion = bnn.ELBOLoss(dataset_size=50)
    x, y = torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(2):  # the second step too (cached state, kept samples)
        with count_syncs() as syncs:
            optimizer.zero_grad()
            criterion(model(x), y, model).backward()
            optimizer.step()
        assert syncs.count == 0, str(syncs)


def test_vae_step_takes_no_host_sync() -> None:
    model = VAE(input_dim=6, latent_dim=2, hidden=(5,))
    x = torch.rand(4, 6)
    for objective, gradient in [("elbo", "standard"), ("elbo", "stl"), ("iwae", "dreg")]:
        with count_syncs() as syncs:
            (-model.objective(x, objective, k=3, gradient=gradient).mean()).backward()
        assert syncs.count == 0, f"{objective}/{gradient}: {syncs}"


def test_vi_elbo_with_a_fixed_prior_takes_no_host_sync() -> None:
    family = MeanFieldGaussian(3)
    x = torch.randn(3)
    for _ in range(2):  # a new prior object each time: the first call per prior is counted too
        prior = Independent(_normal(torch.zeros(3), 2.0 * torch.ones(3)), 1)
        with count_syncs() as syncs:
            elbo(_log_likelihood(x), family(), rp.Pathwise(), 4, prior).backward()
        assert syncs.count == 0, str(syncs)


def _model_steps() -> dict[str, Callable[[], None]]:
    discrete = DiscreteVAE(DiscreteVAEConfig(arch="nonlinear", latent=3, hidden=4, data_dim=6))
    bits = torch.rand(5, 6)
    regression = BayesianLogisticRegression(4, family="full-rank")
    features, labels = torch.randn(8, 4), torch.randint(0, 2, (8,)).float()
    task = LQR(horizon=4)
    policy = linear_gaussian_policy(2, 1, std=0.5)
    x0 = task.initial_state(3)
    loo = rp.baselines.LeaveOneOut()
    return {
        "discrete VAE, DisARM": lambda: discrete.loss(bits, rp.DisARM(), 2)[0].backward(),
        "discrete VAE, VIMCO": lambda: discrete.loss(bits, rp.VIMCO(), 2)[0].backward(),
        "logistic regression": lambda: regression.elbo(features, labels, rp.Pathwise(), 3, 10.0).backward(),
        "policy, pathwise": lambda: policy_objective(task, policy, x0, rp.Pathwise(), 2).backward(),
        "policy, score fn": lambda: policy_objective(task, policy, x0, rp.ScoreFunction(loo), 2).backward(),
        "policy, reward-to-go": lambda: reward_to_go_objective(task, policy, x0, 2, loo).backward(),
    }


def test_model_steps_take_no_host_sync() -> None:
    # before issue #14 these took 1 (Bernoulli validation), 3, 3 and 10 / 25 / 25 (one Normal
    # validation per simulated step) host syncs per step
    for name, step in _model_steps().items():
        with count_syncs() as syncs:
            step()
        assert syncs.count == 0, f"{name}: {syncs}"
