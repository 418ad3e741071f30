"""The lean evaluation for one shared concentration and small calls (``_gamma_host``): the same
derivative as the general host path, the term counts it memoises never fall short, and the
series' safe limit keeps the condition number below 1e5."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reparam.distributions._gamma_host import (
    _eta_value,
    _series_large,
    _temme_lean,
    cached_series_terms,
    digamma_value,
    host_log_grad,
    series_safe_limit,
    shared_sample_grad,
)
from reparam.distributions._gamma_sampler import log_standard_gamma, standard_gamma
from reparam.distributions._gamma_series import _centred, _matrix_shared, series_terms

F64 = torch.float64


@pytest.mark.parametrize("n", [500, 5000])  # the small-call series (float64), the large one
@pytest.mark.parametrize("log_space", [False, True])
@pytest.mark.parametrize("alpha", [1e-3, 0.05, 0.5, 1.0, 3.0, 7.9, 8.0, 20.0, 100.0, 1e4])
def test_lean_weighted_sum_equals_the_general_path(alpha: float, log_space: bool, n: int) -> None:
    if alpha < 1.0 and not log_space:
        pytest.skip("draws below concentration 1 go through log space")
    a = torch.tensor(alpha)
    sample = log_standard_gamma(a, torch.Size([n])) if log_space else standard_gamma(a, torch.Size([n]))
    grad = torch.randn(n)
    got = shared_sample_grad(grad, sample, a.item(), log_space)
    if got is None:  # a rare far-tail sample: the general path takes the call (checked elsewhere)
        return
    y = sample.double() if log_space else torch.log(sample.double())
    g = host_log_grad(y, a.double())
    want = (grad.double() * (g if log_space else g * sample.double())).sum()
    # both ~2e-9 accurate per sample in float64; Temme's expansion runs in float32 on float32
    # samples (4.2e-7 measured, below; x = exp(log x) in float32 adds ~|log x| 6e-8). A signed
    # sum of 500 may cancel: compare to the sum of |terms|.
    # the large-call series evaluates its bulk in float32 (1.0e-5 measured, test below)
    tol = 2e-6 if alpha >= 8.0 else (3e-5 if n > 1024 else 1e-8)
    scale = (grad.double().abs() * (g if log_space else g * sample.double()).abs()).sum()
    assert abs(float(got - want)) <= tol * float(scale)


@pytest.mark.parametrize("n", [300, 20000])  # powers of t as a matrix; Horner's rule
@pytest.mark.parametrize("alpha", [8.0, 8.5, 15.0, 100.0, 1e3, 1e4])
def test_float32_temme_per_sample_within_1e6_of_float64(alpha: float, n: int) -> None:
    # one-hot grads give each sample's derivative; the float64 general path is the reference
    # (~2e-9). Float32 rounding in eta and Horner's rule: 4.2e-7 measured over 200000 draws.
    x = standard_gamma(torch.tensor(alpha), torch.Size([n]))
    g = host_log_grad(torch.log(x.double()), torch.tensor(alpha, dtype=F64)) * x.double()
    low, high = float(x.min()), float(x.max())
    t_max = max(-_eta_value(low / alpha - 1.0), _eta_value(high / alpha - 1.0)) / 2.5
    got = _temme_lean(x, alpha, t_max).double() * x.double()
    assert got.dtype == F64 and float(((got - g).abs() / g.abs()).max()) < 1e-6


def test_far_tails_of_small_calls_are_left_to_the_general_path() -> None:
    far = torch.tensor([1.0, series_safe_limit(3.0) + 1.0])
    assert shared_sample_grad(torch.ones(2), far, 3.0, False) is None
    assert shared_sample_grad(torch.ones(1), torch.tensor([1e3]), 100.0, False) is None  # eta > 2.5


def test_memoised_term_counts_never_fall_short() -> None:
    for a in np.exp(np.linspace(math.log(1e-4), math.log(7.99), 60)):
        for x in np.linspace(1e-3, series_safe_limit(a), 40):
            assert cached_series_terms(x, a) >= series_terms(x, a)


def test_condition_number_below_1e5_up_to_the_safe_limit() -> None:
    # the lean series skips the condition check below series_safe_limit(a); the general path
    # hands elements to differences above 1e6: a 10x margin on a fine grid of concentrations
    for a in np.exp(np.linspace(math.log(1e-4), math.log(7.99), 40)):
        x = torch.linspace(1e-6, series_safe_limit(a), 2000, dtype=F64)
        s, d = _matrix_shared(x, a, series_terms(float(x.max()), a))
        _, condition = _centred(torch.log(x), s, d, digamma_value(a + 1.0))
        assert float(condition.max()) < 1e5, a


def test_digamma_value_matches_torch() -> None:
    for a in (1e-4, 0.3, 1.0, 2.5, 9.99, 10.0, 1e3):
        want = float(torch.special.digamma(torch.tensor(a, dtype=F64)))
        assert abs(digamma_value(a) - want) <= 1e-14 * max(1.0, abs(want))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha", [1e-3, 0.3, 1.0, 3.0, 7.99])
def test_large_series_per_sample_accuracy(alpha: float, dtype: torch.dtype) -> None:
    # Horner's rule in the sample's dtype below bulk_limit(a), float64 above: float32 within
    # 1.0e-5 of float64 (measured on 200000 draws per alpha; 3e-5 leaves rounding headroom),
    # float64 to the series' ~2e-9 accuracy (1e-8)
    a = torch.tensor(alpha, dtype=dtype)
    y = log_standard_gamma(a, torch.Size([20000]))
    x = torch.exp(y).clamp(min=torch.finfo(dtype).tiny)
    got = _series_large(x, alpha) / alpha
    want = host_log_grad(torch.log(x.double()), a.double())
    tol = 3e-5 if dtype == torch.float32 else 1e-8
    assert got.dtype == F64 and float(((got - want).abs() / want.abs()).max()) < tol
