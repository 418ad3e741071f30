"""Registered KL divergences: VonMises || VonMises, TruncatedNormal || TruncatedNormal and
TruncatedNormal || Normal against adaptive quadrature (deterministic) and Monte Carlo."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate
from torch.distributions import Normal, kl_divergence
from torch.distributions import VonMises as TorchVonMises

from reparam.distributions import TruncatedNormal, VonMises

D64 = torch.float64
INF = math.inf


def _t(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=D64)


def _quad_kl(
    p: torch.distributions.Distribution, q: torch.distributions.Distribution, lo: float, hi: float
) -> float:
    """integral of p (log p - log q) over [lo, hi] (scipy's adaptive quadrature, ~1e-12)."""

    def integrand(x: float) -> float:
        v = _t(x)
        lp = float(p.log_prob(v))
        return math.exp(lp) * (lp - float(q.log_prob(v)))

    return integrate.quad(integrand, lo, hi, limit=400, epsabs=1e-13, epsrel=1e-11)[0]


VON_MISES = [(0.3, 2.0, -1.0, 0.5), (0.0, 0.01, 2.0, 5.0), (1.0, 50.0, 1.2, 80.0), (-2.0, 300.0, -2.0, 1.0)]


@pytest.mark.parametrize(("mp", "kp", "mq", "kq"), VON_MISES)
@pytest.mark.parametrize("cls", [VonMises, TorchVonMises])
def test_von_mises_kl_matches_quadrature(cls: type, mp: float, kp: float, mq: float, kq: float) -> None:
    p, q = cls(_t(mp), _t(kp)), cls(_t(mq), _t(kq))
    # Bessel functions from i0e/i1e (relative error ~1e-15): agreement to 1e-8 relative with
    # reparam's log_prob; torch's own log_prob uses a polynomial log I0 accurate to ~1e-7 (its
    # quadrature differs from the closed form by 4e-7 relative at kappa = 2): 2e-6 there
    expected = _quad_kl(p, q, mp - math.pi, mp + math.pi)
    rel = 1e-8 if cls is VonMises else 2e-6
    assert float(kl_divergence(p, q)) == pytest.approx(expected, rel=rel, abs=1e-12)


def test_von_mises_kl_monte_carlo_and_batch() -> None:
    p = VonMises(torch.tensor([0.3, -1.0], dtype=D64), torch.tensor([2.0, 0.7], dtype=D64))
    q = VonMises(torch.tensor([-1.0, 2.0], dtype=D64), torch.tensor([0.5, 3.0], dtype=D64))
    kl = kl_divergence(p, q)
    x = p.sample((200_000,))
    ratio = p.log_prob(x) - q.log_prob(x)
    se = ratio.std(0) / ratio.shape[0] ** 0.5
    # |z| < 5 per element: two-sided false-alarm rate 5.7e-7 each
    assert ((ratio.mean(0) - kl).abs() < 5 * se).all()
    assert (kl_divergence(p, p).abs() < 1e-12).all()


TRUNCATED = [
    # (p loc, scale, low, high), (q loc, scale, low, high)
    ((0.0, 1.0, -1.0, 2.0), (0.5, 2.0, -1.0, 2.0)),
    ((1.0, 0.5, 0.0, INF), (-1.0, 1.5, 0.0, INF)),
    ((0.0, 1.0, -0.5, 0.5), (2.0, 0.7, -1.0, 3.0)),  # p's interval strictly inside q's
    ((-3.0, 2.0, -INF, -1.0), (0.0, 1.0, -INF, 0.0)),
]


@pytest.mark.parametrize(("pa", "qa"), TRUNCATED)
def test_truncated_normal_kl_matches_quadrature(pa: tuple[float, ...], qa: tuple[float, ...]) -> None:
    p, q = TruncatedNormal(*map(_t, pa)), TruncatedNormal(*map(_t, qa))
    lo, hi = max(pa[2], pa[0] - 40 * pa[1]), min(pa[3], pa[0] + 40 * pa[1])
    assert float(kl_divergence(p, q)) == pytest.approx(_quad_kl(p, q, lo, hi), rel=1e-8, abs=1e-12)


@pytest.mark.parametrize(("pa", "_"), TRUNCATED)
def test_truncated_normal_to_normal_kl_matches_quadrature(pa: tuple[float, ...], _: object) -> None:
    p, q = TruncatedNormal(*map(_t, pa)), Normal(_t(0.7), _t(1.3))
    lo, hi = max(pa[2], pa[0] - 40 * pa[1]), min(pa[3], pa[0] + 40 * pa[1])
    assert float(kl_divergence(p, q)) == pytest.approx(_quad_kl(p, q, lo, hi), rel=1e-8, abs=1e-12)


def test_truncated_normal_kl_monte_carlo_batch_and_infinite_outside() -> None:
    p = TruncatedNormal(torch.tensor([0.0, 1.0], dtype=D64), 1.0, -1.0, torch.tensor([2.0, INF], dtype=D64))
    q = TruncatedNormal(torch.tensor([0.5, -1.0], dtype=D64), 2.0, -1.0, torch.tensor([2.0, INF], dtype=D64))
    kl = kl_divergence(p, q)
    x = p.sample((200_000,))
    ratio = p.log_prob(x) - q.log_prob(x)
    se = ratio.std(0) / ratio.shape[0] ** 0.5
    assert ((ratio.mean(0) - kl).abs() < 5 * se).all()  # |z| < 5: false-alarm rate 5.7e-7 each
    # p has mass outside q's interval: infinite
    wide = TruncatedNormal(_t(0.0), _t(1.0), _t(-2.0), _t(2.0))
    narrow = TruncatedNormal(_t(0.0), _t(1.0), _t(-1.0), _t(2.0))
    assert float(kl_divergence(wide, narrow)) == INF
    assert float(kl_divergence(narrow, narrow)) == pytest.approx(0.0, abs=1e-12)
