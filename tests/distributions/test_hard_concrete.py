"""HardConcrete: the gate distribution (atoms and CDF) against closed forms and Monte Carlo,
log_prob's normalisation, the pathwise gradient against quadrature, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reparam.distributions import HardConcrete

D64 = torch.float64
N = 200_000
LOGITS = torch.tensor([-2.0, 0.0, 1.5], dtype=D64)
BETA = 2.0 / 3.0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_atoms_match_closed_forms() -> None:
    gate = HardConcrete(LOGITS, BETA)
    for a, p0, p1, nz in zip(
        LOGITS.tolist(),
        gate.prob_zero(), gate.prob_one(), gate.prob_nonzero(), strict=True
    ):
        # the formulas written out by hand from P(s <= x) = sigmoid(beta logit(x) - a)
        assert float(p0) == pytest.approx(_sigmoid(BETA * math.log(0.1 / 1.1) - a), rel=1e-12)
        assert float(p1) == pytest.approx(_sigmoid(a - BETA * math.log(1.1 / 0.1)), rel=1e-12)
        assert float(nz) == pytest.approx(1.0 - float(p0), rel=1e-12)


def test_gate_distribution_matches_monte_carlo() -> None:
    gate = HardConcrete(LOGITS, BETA)
    z = gate.rsample((N,))
    checks = [((z == 0).double(), gate.prob_zero()), ((z == 1).double(), gate.prob_one())]
    for x in (0.1, 0.5, 0.9):
        checks.append(((z <= x).double(), gate.cdf(torch.tensor(x, dtype=D64))))
    for hits, p in checks:
        se = torch.sqrt(p * (1 - p) / N)
        # |z| < 5 per entry: two-sided false-alarm rate 5.7e-7 each (15 entries)
        assert ((hits.mean(0) - p).abs() < 5 * se).all(), (hits.mean(0), p)


def test_log_prob_is_a_density_against_atoms_plus_lebesgue() -> None:
    # P(0) + P(1) + integral over (0, 1) of exp(log_prob) = 1; 400-point Gauss-Legendre on a
    # smooth integrand: error far below the 1e-9 tolerance
    gate = HardConcrete(LOGITS, BETA)
    nodes, weights = np.polynomial.legendre.leggauss(400)
    x = torch.tensor(0.5 * (nodes + 1), dtype=D64).unsqueeze(-1)
    w = torch.tensor(0.5 * weights, dtype=D64).unsqueeze(-1)
    inner = (w * gate.log_prob(x.expand(-1, 3)).exp()).sum(0)
    atoms = gate.log_prob(torch.zeros(3, dtype=D64)).exp() + gate.log_prob(torch.ones(3, dtype=D64)).exp()
    torch.testing.assert_close(inner + atoms, torch.ones(3, dtype=D64), rtol=0, atol=1e-9)
    # the continuous part is the derivative of the CDF (central differences, h = 1e-6: error ~1e-10)
    x = torch.tensor([0.2, 0.7], dtype=D64).unsqueeze(-1)
    fd = (gate.cdf(x + 1e-6) - gate.cdf(x - 1e-6)) / 2e-6
    torch.testing.assert_close(gate.log_prob(x.expand(-1, 3)).exp(), fd, rtol=1e-7, atol=0)
    unchecked = HardConcrete(LOGITS, BETA, validate_args=False)
    assert (unchecked.log_prob(torch.tensor([-0.1, 1.2, 1.1], dtype=D64)) == -math.inf).all()


def test_pathwise_gradient_matches_quadrature() -> None:
    # E[z] = integral_0^1 (1 - F(x)) dx, differentiated through the quadrature; the Monte Carlo
    # mean of dz/dlogits must agree (|z| < 5, false-alarm rate 5.7e-7 per entry)
    logits = LOGITS.clone().requires_grad_()
    nodes, weights = np.polynomial.legendre.leggauss(400)
    x = torch.tensor(0.5 * (nodes + 1), dtype=D64).unsqueeze(-1)
    w = torch.tensor(0.5 * weights, dtype=D64).unsqueeze(-1)
    mean = (w * (1 - HardConcrete(logits, BETA).cdf(x))).sum(0)
    (exact,) = torch.autograd.grad(mean.sum(), logits)
    z = HardConcrete(logits, BETA).rsample((N,))
    (g,) = torch.autograd.grad(z.sum(), logits)

    z_mean = z.detach().mean(0)
    assert ((z_mean - mean.detach()).abs() < 5 * z.detach().std(0) / N**0.5).all()
    # per-sample gradients are bounded by (r - l) / (4 beta); a conservative SE bound from it
    se_bound = (1.2 / (4 * BETA)) / N**0.5
    assert ((g / N - exact).abs() < 5 * se_bound).all(), (g / N, exact)


def test_infinite_logits_give_exact_gates_and_finite_gradients() -> None:
    logits = torch.tensor([math.inf, -math.inf, 0.0], requires_grad=True)
    temperature = torch.tensor(0.5, requires_grad=True)
    z = HardConcrete(logits, temperature).rsample((100,))
    assert (z[:, 0] == 1).all() and (z[:, 1] == 0).all()
    z.sum().backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(temperature.grad)


def test_expand_and_float32() -> None:
    gate = HardConcrete(torch.zeros(3), 0.5).expand((2, 3))
    z = gate.rsample((4,))
    assert z.shape == (4, 2, 3) and z.dtype == torch.float32
    assert gate.log_prob(z).shape == (4, 2, 3)
    assert HardConcrete(0.0, 0.5).batch_shape == ()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0.0}, "temperature must be positive"),
        ({"temperature": math.nan}, "temperature must be positive"),
        ({"logits": math.nan}, "logits must not be NaN"),
        ({"low": 0.1}, "low must be a number < 0"),
        ({"high": 1.0}, "high a number > 1"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, float], match: str) -> None:
    args = {"logits": 0.0, "temperature": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        HardConcrete(torch.tensor(args.pop("logits")), validate_args=True, **args)
