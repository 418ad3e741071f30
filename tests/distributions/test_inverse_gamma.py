"""InverseGamma: z = 1/X carries -z^2 dX/dtheta; cdf is the upper regularised gamma."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.distributions import constraints

from reparam.distributions import InverseGamma
from reparam.distributions.gamma import Gamma


def test_base_is_our_gamma_and_expand_keeps_class() -> None:
    q = InverseGamma(torch.ones(3), 2.0)
    assert isinstance(q.base_dist, Gamma)
    big = q.expand((2, 3))
    assert isinstance(big, InverseGamma) and isinstance(big.base_dist, Gamma)


def test_cdf_matches_scipy() -> None:
    q = InverseGamma(torch.tensor(0.7, dtype=torch.float64), 2.0)
    z = torch.tensor([0.1, 1.0, 30.0], dtype=torch.float64)
    np.testing.assert_allclose(q.cdf(z).numpy(), stats.invgamma(0.7, scale=2.0).cdf(z.numpy()), rtol=1e-12)


def test_small_concentration_gradients_finite() -> None:
    # 1/X overflows where X ~ Gamma(alpha) underflows: P(X < 1e-308) = 4e-16 at alpha = 0.05
    # in float64 (in float32, P(X < 1e-38) is already 1e-2, so 1/X would be inf there).
    a = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    z = InverseGamma(a, 1.0).rsample((1000,))
    (grad,) = torch.autograd.grad(torch.log(z).sum(), a)
    assert bool(torch.isfinite(grad))


def test_arguments_are_checked_once_with_the_own_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # each check is a mask and a reduction per argument: InverseGamma's own, not again by the
    # base Gamma nor by torch's arg_constraints
    import reparam.distributions.gamma as gamma_module
    import reparam.distributions.inverse_gamma as inverse_module

    calls: list[str] = []
    for module in (gamma_module, inverse_module):
        original = module.check_positive_finite

        def counted(owner: str, _original=original, **params: object) -> None:  # type: ignore[no-untyped-def]
            calls.append(owner)
            _original(owner, **params)

        monkeypatch.setattr(module, "check_positive_finite", counted)
    positive = type(constraints.positive)
    check = positive.check
    monkeypatch.setattr(positive, "check", lambda self, value: calls.append("torch") or check(self, value))
    q = InverseGamma(torch.ones(3), 2.0, validate_args=True)
    assert calls == ["InverseGamma"]
    assert q._validate_args and q.base_dist._validate_args  # samples are still validated
    with pytest.raises(ValueError, match=r"InverseGamma.*concentration"):
        InverseGamma(torch.tensor([1.0, -1.0]), 2.0, validate_args=True)
    with pytest.raises(ValueError, match=r"InverseGamma.*rate"):
        InverseGamma(1.0, torch.tensor(math.nan), validate_args=True)
    with pytest.raises(ValueError):  # sample validation as before
        q.log_prob(torch.tensor([-1.0, 1.0, 1.0]))
    assert not InverseGamma(torch.ones(3), 2.0, validate_args=False)._validate_args
