"""Temme's expansion differentiated in the concentration, against 40-digit mpmath."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import mpmath
import numpy as np
import pytest
import torch

from reparam.distributions._gamma_asymptotic import B, asymptotic_log_grad, eta_of, log_gamma_star

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "derive_gamma_asymptotic.py"


def mp_log_grad(x: mpmath.mpf, a: float) -> float:
    """``d log x / da = (dQ/da) / (x p(x))`` at 40 digits (``Q`` the upper regularised function)."""
    with mpmath.workdps(40):
        a_mp = mpmath.mpf(a)
        # Below the mode differentiate -P (tiny) rather than Q = 1 - P: same derivative.
        lower, upper = (0, x) if x < a_mp else (x, mpmath.inf)
        sign = -1 if x < a_mp else 1
        d_q = sign * mpmath.diff(lambda s: mpmath.gammainc(s, lower, upper, regularized=True), a_mp)
        return float(d_q / mpmath.e ** (a_mp * mpmath.log(x) - x - mpmath.loggamma(a_mp)))


def x_of_eta(eta: float, a: float) -> mpmath.mpf:
    """``x = a (1 + mu)`` with ``eta^2 / 2 = mu - log(1 + mu)``, sign of ``mu`` that of ``eta``
    (bracketed root: ``mu`` in ``(-1, 0)`` or ``(0, eta^2 + 10)``)."""
    with mpmath.workdps(40):
        if eta == 0:
            return mpmath.mpf(a)
        target = mpmath.mpf(eta) ** 2 / 2
        bracket = (mpmath.mpf(-1) + mpmath.mpf(10) ** -30, mpmath.mpf(0)) if eta < 0 else (0, 2 * target + 10)
        mu = mpmath.findroot(lambda m: m - mpmath.log1p(m) - target, bracket, solver="anderson")
        return mpmath.mpf(a) * (1 + mu)


def test_embedded_coefficients_are_what_the_derivation_script_gives() -> None:
    spec = importlib.util.spec_from_file_location("derive_gamma_asymptotic", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    coefficients, _ = module.derive(6, 12)
    got = np.array([[float(v) for v in row] for row in coefficients])
    np.testing.assert_allclose(np.array(B)[:, :13], got, rtol=1e-15, atol=0.0)


@pytest.mark.parametrize("a", [8.0, 9.5, 15.0, 40.0, 150.0, 1e3, 1e4])
def test_matches_mpmath_on_the_whole_eta_range(a: float) -> None:
    etas = np.linspace(-2.5, 2.5, 11)
    xs = [x_of_eta(float(e), a) for e in etas]
    y = torch.tensor([float(mpmath.log(x)) for x in xs], dtype=torch.float64)
    eta = eta_of(y, torch.tensor(a, dtype=torch.float64))
    np.testing.assert_allclose(eta.numpy(), etas, rtol=1e-9, atol=1e-12)
    want = np.array([mp_log_grad(x, a) for x in xs])
    shared = asymptotic_log_grad(eta, torch.tensor(a, dtype=torch.float64)).numpy()
    per_element = asymptotic_log_grad(eta, torch.full_like(eta, a)).numpy()
    np.testing.assert_allclose(shared, want, rtol=1e-8)
    np.testing.assert_allclose(per_element, want, rtol=1e-8)


def test_log_gamma_star_matches_mpmath() -> None:
    a = [8.0, 11.0, 100.0, 1e4, 1e7]
    got = log_gamma_star(torch.tensor(a, dtype=torch.float64)).numpy()
    with mpmath.workdps(50):
        want = [
            float(mpmath.loggamma(v) - (v - 0.5) * mpmath.log(v) + v - mpmath.log(2 * mpmath.pi) / 2)
            for v in map(mpmath.mpf, a)
        ]
    np.testing.assert_allclose(got, want, rtol=1e-13)
    assert math.isfinite(float(got[-1]))


@pytest.mark.parametrize(("order", "half_width"), [(0, 2.5), (0, 0.6), (3, 1.9), (6, 2.2)])
def test_economized_polynomial_stays_within_its_tolerance(order: int, half_width: float) -> None:
    from reparam.distributions._gamma_asymptotic import economized

    coefficients = list(B[order])
    eta = np.linspace(-half_width, half_width, 2001)
    exact = np.polynomial.polynomial.polyval(eta, coefficients)
    shorter = economized(coefficients, half_width, 1e-13)
    approx = np.polynomial.polynomial.polyval(eta / half_width, shorter)
    assert np.max(np.abs(approx - exact)) < 1.5e-13
    assert len(shorter) < 0.7 * len(coefficients)
