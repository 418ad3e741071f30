"""GaussianGate: atoms, CDF and prob_nonzero against closed forms and Monte Carlo, log_prob's
normalisation, the pathwise gradient against quadrature, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from reparam.distributions import GaussianGate

D64 = torch.float64
N = 200_000
LOC = torch.tensor([-0.3, 0.5, 1.2], dtype=D64)
SCALE = 0.5


def test_atoms_match_closed_forms() -> None:
    gate = GaussianGate(LOC, SCALE)
    for mu, p0, p1, nz in zip(
        LOC.tolist(),
        gate.prob_zero(), gate.prob_one(), gate.prob_nonzero(), strict=True
    ):
        assert float(p0) == pytest.approx(stats.norm.cdf(-mu / SCALE), rel=1e-12)
        assert float(p1) == pytest.approx(stats.norm.sf((1 - mu) / SCALE), rel=1e-12)
        assert float(nz) == pytest.approx(stats.norm.cdf(mu / SCALE), rel=1e-12)


def test_gate_distribution_matches_monte_carlo() -> None:
    gate = GaussianGate(LOC, SCALE)
    z = gate.rsample((N,))
    checks = [((z == 0).double(), gate.prob_zero()), ((z == 1).double(), gate.prob_one())]
    checks.append(((z != 0).double(), gate.prob_nonzero()))
    for x in (0.1, 0.5, 0.9):
        checks.append(((z <= x).double(), gate.cdf(torch.tensor(x, dtype=D64))))
    for hits, p in checks:
        se = torch.sqrt(p * (1 - p) / N)
        # |z| < 5 per entry: two-sided false-alarm rate 5.7e-7 each (18 entries)
        assert ((hits.mean(0) - p).abs() < 5 * se).all(), (hits.mean(0), p)


def _quadrature() -> tuple[torch.Tensor, torch.Tensor]:
    nodes, weights = np.polynomial.legendre.leggauss(200)
    x = torch.tensor(0.5 * (nodes + 1), dtype=D64).unsqueeze(-1)
    return x, torch.tensor(0.5 * weights, dtype=D64).unsqueeze(-1)


def test_log_prob_is_a_density_against_atoms_plus_lebesgue() -> None:
    # 200-point Gauss-Legendre of a Gaussian density on [0, 1]: error far below 1e-10
    gate = GaussianGate(LOC, SCALE)
    x, w = _quadrature()
    inner = (w * gate.log_prob(x.expand(-1, 3)).exp()).sum(0)
    atoms = gate.prob_zero() + gate.prob_one()
    torch.testing.assert_close(inner + atoms, torch.ones(3, dtype=D64), rtol=0, atol=1e-10)
    torch.testing.assert_close(gate.log_prob(torch.zeros(3, dtype=D64)).exp(), gate.prob_zero())
    torch.testing.assert_close(gate.log_prob(torch.ones(3, dtype=D64)).exp(), gate.prob_one())


def test_pathwise_gradient_matches_quadrature() -> None:
    # d/dmu E[z], E[z] = integral_0^1 (1 - F(x)) dx = P(0 < eps' < ...) = Phi(mu/s) - Phi((mu-1)/s)
    # the per-sample gradient is 1[0 < loc + s eps < 1]: a Bernoulli mean, binomial SE;
    # |z| < 5 per entry, false-alarm rate 5.7e-7 each
    loc = LOC.clone().requires_grad_()
    x, w = _quadrature()
    mean = (w * (1 - GaussianGate(loc, SCALE).cdf(x))).sum(0)
    (exact,) = torch.autograd.grad(mean.sum(), loc)
    p = torch.tensor(stats.norm.cdf(LOC / SCALE) - stats.norm.cdf((LOC - 1) / SCALE), dtype=D64)
    torch.testing.assert_close(exact, p, rtol=1e-10, atol=0)
    z = GaussianGate(loc, SCALE).rsample((N,))
    (g,) = torch.autograd.grad(z.sum(), loc)
    assert ((g / N - p).abs() < 5 * torch.sqrt(p * (1 - p) / N)).all()


def test_expand_and_float32() -> None:
    gate = GaussianGate(torch.zeros(3), 0.5).expand((2, 3))
    z = gate.rsample((4,))
    assert z.shape == (4, 2, 3) and z.dtype == torch.float32
    assert gate.log_prob(z).shape == (4, 2, 3)


@pytest.mark.parametrize(
    ("loc", "scale", "match"),
    [
        (0.0, 0.0, "scale must be positive"),
        (0.0, math.inf, "scale must be positive"),
        (math.nan, 1.0, "loc must be finite"),
    ],
)
def test_bad_arguments_name_the_argument(loc: float, scale: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GaussianGate(torch.tensor(loc), torch.tensor(scale), validate_args=True)
