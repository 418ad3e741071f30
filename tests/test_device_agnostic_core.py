"""Every class in ``rp.distributions`` and every estimator runs on its inputs' device and dtype,
with no host read (issue #14, point 1; ``test_device_agnostic.py`` covers ``nn``/``vi``/models).

The ``meta`` device stands in for an accelerator: a meta tensor has a shape, a dtype and a
device but no data. Any op mixing it with a CPU tensor (other than a 0-dim CPU scalar, which
CUDA kernels accept too) raises "... is not on the expected device meta", and any read of a
value (``.item()``, ``bool``, a data-dependent shape) raises. So a ``rsample`` + ``log_prob``
+ ``backward`` that completes on meta made every tensor on its inputs' device and read nothing
back: exactly what a GPU needs. Parameters are float64 so a tensor created in the default
float32 shows up as a dtype change of the outputs or of the gradients, which is checked too.

Distributions are built with ``validate_args=False``: torch's argument validation reads the
parameters by design (at construction, not in the sampling step).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from estimators.estimator_cases import CASES as ESTIMATOR_CASES
from estimators.estimator_cases import forward
from torch import Tensor
from torch.distributions import Categorical, Distribution, Normal

import reparam as rp

D = rp.distributions
META = torch.device("meta")
F64 = torch.float64


def _leaf(*shape: int) -> Tensor:
    return torch.empty(*shape, device=META, dtype=F64).requires_grad_(True)


def _mixture(p: Tensor) -> Distribution:
    mix = Categorical(logits=torch.zeros_like(p).unsqueeze(-1).expand(*p.shape, 3), validate_args=False)
    locs = torch.stack([p - 1.0, p, p + 2.0], -1)
    components = Normal(locs, torch.ones_like(locs), validate_args=False)
    return D.MixtureSameFamily(mix, components, validate_args=False)


def _dirichlet(p: Tensor) -> Distribution:
    return D.Dirichlet(torch.stack([p, p + 1.0, p + 2.0], -1), validate_args=False)


# every class in rp.distributions (the test below checks the list is complete): build from one
# float64 meta parameter tensor of shape (4,); whether it has a log_prob
BUILDERS: dict[str, tuple[Callable[[Tensor], Distribution], bool]] = {
    "Beta": (lambda p: D.Beta(p, p + 1.0, validate_args=False), True),
    "Chi2": (lambda p: D.Chi2(p, validate_args=False), True),
    "Dirichlet": (_dirichlet, True),
    "Gamma": (lambda p: D.Gamma(p, p + 0.5, validate_args=False), True),
    "GaussianGate": (lambda p: D.GaussianGate(p, torch.ones_like(p), validate_args=False), False),
    "HardConcrete": (lambda p: D.HardConcrete(p, 0.5, validate_args=False), False),
    "Implicit": (lambda p: D.Implicit(Normal(p, torch.ones_like(p), validate_args=False)), True),
    "InverseCDF": (lambda p: D.InverseCDF(Normal(p, torch.ones_like(p), validate_args=False)), True),
    "InverseGamma": (lambda p: D.InverseGamma(p, p + 1.0, validate_args=False), True),
    "InvertibleGaussian": (
        lambda p: D.InvertibleGaussian(p, torch.ones_like(p), 0.5, validate_args=False),
        True,
    ),
    "MixtureSameFamily": (_mixture, True),
    "RelaxedTopK": (lambda p: D.RelaxedTopK(p, 2, 0.5, validate_args=False), False),
    "StudentT": (lambda p: D.StudentT(p, p, p + 1.0, validate_args=False), True),
    "TruncatedNormal": (
        lambda p: D.TruncatedNormal(p, torch.ones_like(p), -1.0, 2.0, validate_args=False),
        True,
    ),
    "VonMises": (lambda p: D.VonMises(p, p + 1.0, validate_args=False), True),
}


def test_every_distribution_class_is_listed() -> None:
    classes = {name for name in D.__all__ if isinstance(getattr(D, name), type)}
    assert classes == set(BUILDERS), f"add the new classes to BUILDERS: {classes ^ set(BUILDERS)}"


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_distribution_on_meta(name: str) -> None:
    build, has_log_prob = BUILDERS[name]
    p = _leaf(4)
    dist = build(p)
    z = dist.rsample((5,))
    assert z.device == META and z.dtype == F64, f"{name}.rsample gave {z.device}/{z.dtype}"
    loss = z.sum()
    if has_log_prob:
        lp = dist.log_prob(z.detach())
        assert lp.device == META and lp.dtype == F64, f"{name}.log_prob gave {lp.device}/{lp.dtype}"
        loss = loss + lp.sum()
    (grad,) = torch.autograd.grad(loss, p)
    assert grad.device == META and grad.dtype == F64, f"{name}: gradient on {grad.device}/{grad.dtype}"
    assert grad.shape == p.shape


def test_every_registered_estimator_has_a_case() -> None:
    """Every estimator on the command line is in the shared cases (compile, torch.func, syncs, meta)."""
    from reparam.estimators.registry import ESTIMATORS, make_estimator

    covered = {type(make()) for make, _ in ESTIMATOR_CASES.values()}
    missing = sorted(name for name in ESTIMATORS if type(make_estimator(name)) not in covered)
    assert not missing, f"add these to tests/estimators/estimator_cases.py: {missing}"


def _meta_params(family: str) -> list[Tensor]:
    if family == "normal":
        return [_leaf(3), _leaf(3)]
    if family == "bernoulli":
        return [_leaf(3)]
    if family.startswith("categorical"):
        return [_leaf(2, 4)]
    return [_leaf(2, 3)]


@pytest.mark.parametrize("name", sorted(ESTIMATOR_CASES))
def test_estimator_step_on_meta(name: str) -> None:
    make, family = ESTIMATOR_CASES[name]
    params = _meta_params(family)
    estimator = make()
    _to_meta(estimator)
    # torch's OneHotCategorical builds its inner Categorical without passing validate_args on,
    # so validation (a read of the values, by design) is turned off for the step as a whole
    # (tests/conftest.py restores the default after each test)
    Distribution.set_default_validate_args(False)
    surrogate = forward(estimator, family)(*params)
    assert surrogate.device == META and surrogate.dtype == F64, (
        f"{name}: surrogate on {surrogate.device}/{surrogate.dtype}"
    )
    grads = torch.autograd.grad(surrogate.sum(), params, allow_unused=True)
    for g in grads:
        assert g is not None, f"{name}: no gradient reached a parameter"
        assert g.device == META and g.dtype == F64, f"{name}: gradient on {g.device}/{g.dtype}"



def _to_meta(estimator: object) -> None:
    """Move the estimator's own modules (RELAX/REBAR controls, a Learned baseline's network)
    to the parameters' device and dtype, as a user calls ``.to(device)`` on their model."""
    if isinstance(estimator, torch.nn.Module):
        estimator.to(device=META, dtype=F64)
        return
    for part in vars(estimator).values():
        if isinstance(part, torch.nn.Module):
            part.to(device=META, dtype=F64)
        elif hasattr(part, "__dict__") and not isinstance(part, Tensor):
            _to_meta(part)
