"""The CPU fast path (regimes chosen by reading values) and the sync-free path (masks, fixed-size
pools, fixed term counts: what accelerators run, forced here by ``force_sync_free``) give the
same derivatives on the CPU.

Both gamma evaluations are accurate to ~2e-9 relative against mpmath
(``test_gamma_grad.py``, ``test_gamma_series.py``, ``test_gamma_asymptotic.py``), so they must
agree to 1e-8 relative (deterministic: the same points, float64). The incomplete beta fraction's
planned term count is set for ~1e-7 relative (``_incomplete_beta``), the sync-free one is the
worst case (240 terms), so Beta/Dirichlet agree to 1e-6 (ten times the planned count's error).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import reparam as rp
from reparam.distributions._beta_grad import beta_logit_grad, dirichlet_vjp
from reparam.distributions._gamma_grad import standard_gamma_log_grad
from reparam.distributions._incomplete_beta import SYNC_FREE_TERMS, plan
from reparam.distributions._sync import sync_free

D = rp.distributions
F64 = torch.float64
ALPHAS = [1e-3, 0.05, 0.5, 1.0, 3.0, 7.9, 8.0, 30.0, 250.0, 1e4]


def _both(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    fast = fn(*args, **kwargs)
    with D.force_sync_free():
        slow = fn(*args, **kwargs)
    return fast, slow


def _assert_relative(fast: torch.Tensor, slow: torch.Tensor, tol: float) -> None:
    assert torch.isfinite(fast).all() and torch.isfinite(slow).all()
    err = ((fast - slow).abs() / slow.abs().clamp(min=1e-300)).max()
    assert err < tol, float(err)


def test_switch() -> None:
    x = torch.zeros(2)
    assert not sync_free(x)
    with D.force_sync_free():
        assert sync_free(x)
        with D.force_sync_free():
            assert sync_free(x)
        assert sync_free(x)
    assert not sync_free(x)
    assert torch.func.vmap(lambda t: torch.tensor(sync_free(t)))(x).all()  # vmap: no reads
    with D.force_sync_free():
        assert plan(torch.tensor(2.0), torch.tensor(3.0)) == (SYNC_FREE_TERMS, False)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_gamma_paths_agree_on_draws_shared(alpha: float) -> None:
    a = torch.tensor(alpha, dtype=F64)
    y = torch.log(D.Gamma(a, 1.0).sample((3000,)).clamp(min=1e-300))
    fast, slow = _both(standard_gamma_log_grad, y, a, sampled=True)
    _assert_relative(fast, slow, 1e-8)


def test_gamma_paths_agree_on_draws_per_element() -> None:
    a = torch.tensor(ALPHAS, dtype=F64).repeat_interleave(300)
    y = torch.log(D.Gamma(a, 1.0).sample().clamp(min=1e-300))
    fast, slow = _both(standard_gamma_log_grad, y, a, sampled=True)
    _assert_relative(fast, slow, 1e-8)
    # a few distinct trailing concentrations (the fast path's column-by-column branch)
    a3 = torch.tensor([0.7, 5.0, 40.0], dtype=F64)
    y3 = torch.log(D.Gamma(a3, 1.0).sample((500,)))
    _assert_relative(*_both(standard_gamma_log_grad, y3, a3, sampled=True), 1e-8)


@pytest.mark.parametrize("alpha", [0.5, 3.0, 7.9, 20.0, 200.0])
def test_gamma_paths_agree_in_the_tails(alpha: float) -> None:
    # quantiles from 1e-12 to 1 - 1e-12: every regime of both paths (series, its near and far
    # tails, Temme, differences), not only the likely ones
    from scipy import stats

    q = torch.logspace(-12, 0, 200, dtype=F64)[:-1]
    u = torch.cat([q, 1.0 - q])
    x = torch.tensor(stats.gamma(alpha).ppf(u.numpy()), dtype=F64)
    a = torch.tensor(alpha, dtype=F64)
    fast, slow = _both(standard_gamma_log_grad, torch.log(x), a)
    _assert_relative(fast, slow, 1e-8)


@pytest.mark.parametrize(("a", "b"), [(0.5, 2.0), (2.0, 3.0), (50.0, 3.0), (0.01, 300.0), (1e3, 1e3)])
def test_beta_paths_agree(a: float, b: float) -> None:
    at, bt = torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64)
    x = D.Beta(at, bt).sample((2000,))
    args = (torch.log(x), torch.log1p(-x), at, bt)
    (fa, fb), (sa, sb) = _both(beta_logit_grad, *args)
    _assert_relative(fa, sa, 1e-6)
    _assert_relative(fb, sb, 1e-6)


def test_dirichlet_paths_agree() -> None:
    alpha = torch.tensor([0.3, 1.5, 4.0, 20.0], dtype=F64)
    x = D.Dirichlet(alpha).sample((2000,))
    g = torch.randn_like(x)
    fast, slow = _both(dirichlet_vjp, x, alpha, g)
    _assert_relative(fast, slow, 1e-6)


def _assert_paths_agree(grad: Callable[[], torch.Tensor]) -> None:
    """``grad()`` on the host path and on the sync-free path from the same RNG state: the same
    draws, so the gradients agree to 1e-8 relative."""
    state = torch.get_rng_state()
    fast = grad()
    torch.set_rng_state(state)
    with D.force_sync_free():
        slow = grad()
    _assert_relative(fast, slow, 1e-8)


@pytest.mark.parametrize("name", ["Gamma", "StudentT"])
def test_rsample_backward_paths_agree(name: str) -> None:
    # concentration below 1: both paths draw in log space, so the same RNG state gives the same
    # samples and the gradients must agree
    def grad() -> torch.Tensor:
        a = torch.tensor([0.4, 0.9], dtype=F64, requires_grad=True)
        dist = D.Gamma(a, 2.0) if name == "Gamma" else D.StudentT(2.0 * a, 0.0, 1.0)
        dist.rsample((500,)).pow(2).sum().backward()
        assert a.grad is not None
        return a.grad

    _assert_paths_agree(grad)


VON_MISES_KAPPAS = [1e-3, 0.5, 2.0, 10.0, 49.9, 50.1, 300.0, 1e4]


def test_von_mises_paths_agree() -> None:
    # The same regimes on both paths (Hill's series below 50 with all the terms it needs, the
    # normal approximation above). A shared concentration's series coefficients come from the
    # recurrence on the host path and a trapezoidal rule on the sync-free one, both ~1e-16
    # absolute, which in the tails (small dF/dkappa) is up to ~1e-11 relative on 1000 draws
    # (measured 1.3e-11 at kappa = 49.9): 1e-8, far below the 1e-4 accuracy target.
    from reparam.distributions.von_mises import von_mises_cdf, von_mises_sample_grad

    for k in VON_MISES_KAPPAS:
        kappa = torch.tensor(k, dtype=F64)
        x = D.VonMises(torch.zeros((), dtype=F64), kappa).sample((1000,))
        _assert_relative(*_both(von_mises_sample_grad, x, kappa), 1e-8)
        grid = torch.linspace(-3.1, 3.1, 63, dtype=F64)
        fast, slow = _both(von_mises_cdf, grid, kappa)
        torch.testing.assert_close(fast, slow, rtol=0, atol=1e-14)
    kappa = torch.tensor(VON_MISES_KAPPAS, dtype=F64).repeat_interleave(200)
    x = D.VonMises(torch.zeros_like(kappa), kappa).sample()
    _assert_relative(*_both(von_mises_sample_grad, x, kappa), 1e-8)


@pytest.mark.parametrize("per_element", [False, True], ids=["shared", "per-element"])
def test_von_mises_rsample_backward_paths_agree(per_element: bool) -> None:
    # one sampler on both paths: the same RNG state gives the same draws, then the same gradient
    # (to the 1e-8 of test_von_mises_paths_agree)
    def grad() -> torch.Tensor:
        k = torch.tensor([0.7, 20.0, 49.9, 50.1, 400.0] if per_element else 3.0, dtype=F64)
        k.requires_grad_()
        D.VonMises(torch.zeros((), dtype=F64), k).rsample((400,)).pow(2).sum().backward()
        assert k.grad is not None
        return k.grad

    _assert_paths_agree(grad)
