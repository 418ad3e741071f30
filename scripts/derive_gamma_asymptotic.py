r"""Derive the coefficients of :mod:`reparam.distributions._gamma_asymptotic` (exact rationals).

Temme's uniform expansion of the regularised upper incomplete gamma function (DLMF 8.12.8-8.12.11)

.. math::
    Q(a, x) = \tfrac12 \operatorname{erfc}(\eta\sqrt{a/2})
        + \frac{e^{-a\eta^2/2}}{\sqrt{2\pi a}} \sum_{k\ge0} c_k(\eta)\, a^{-k},
    \qquad \lambda = x/a,\ \mu = \lambda - 1,\ \tfrac12\eta^2 = \mu - \log(1+\mu),

with ``c_0 = 1/mu - 1/eta`` and ``c_k = (1/eta) c_{k-1}' + (-1)^k g_k / mu`` (``g_k`` the
Stirling coefficients of ``Gamma*(a) = Gamma(a) / (sqrt(2 pi / a) a^a e^-a) ~ sum g_k a^-k``),
differentiated in ``a`` at fixed ``x`` (``d eta/da = -mu/(a eta)``) and divided by the density,
gives the implicit reparameterization derivative of ``x ~ Gamma(a, 1)`` (every
``exp(-a eta^2/2)`` cancels):

.. math::
    \frac{d\log x}{da} = \frac{\partial_a Q}{x\,p(x)} = \frac{\Gamma^*(a)}{a} \sum_{j\ge0} b_j(\eta)\, a^{-j},
    \quad b_0 = \frac{\mu}{\eta} - \frac{\eta}{2} + c_0 \log\lambda,\quad
    b_j = c_j \log\lambda - \frac{c_{j-1}}{2} - \frac{\mu}{\eta} c_{j-1}' - (j-1) c_{j-1}.

Each ``b_j`` is analytic in ``eta`` (radius ``2 sqrt(pi)``); this script prints its
Taylor coefficients ``[j][m]`` (of ``eta^m``) and the Stirling coefficients ``g_k``, as Python
literals. ``log lambda = mu - eta^2/2`` exactly, and ``mu(eta)`` comes from reverting
``eta^2/2 = mu - log(1 + mu)``.

Run: python scripts/derive_gamma_asymptotic.py [--orders 6] [--degree 40]
"""

from __future__ import annotations

import argparse
from fractions import Fraction

from sympy import bernoulli

Series = list[Fraction]  # coefficients of eta^0 .. eta^(N-1)


def mul(p: Series, q: Series) -> Series:
    n = len(p)
    out = [Fraction(0)] * n
    for i, pi in enumerate(p):
        if pi:
            for j in range(n - i):
                out[i + j] += pi * q[j]
    return out


def inverse(p: Series) -> Series:
    """``1/p`` for ``p[0] != 0``."""
    n = len(p)
    out = [Fraction(0)] * n
    out[0] = 1 / p[0]
    for k in range(1, n):
        out[k] = -sum(p[i] * out[k - i] for i in range(1, k + 1)) / p[0]
    return out


def derivative(p: Series) -> Series:
    return [k * p[k] for k in range(1, len(p))] + [Fraction(0)]


def shift_down(p: Series) -> Series:
    """``p / eta`` where ``p[0] == 0``."""
    assert p[0] == 0, "pole left over"
    return [*p[1:], Fraction(0)]


def mu_series(n: int) -> Series:
    r"""``mu(eta)`` with ``eta^2/2 = mu - log(1+mu)``: coefficients by undetermined terms of
    ``sum_{k>=2} (-1)^k mu^k / k = eta^2 / 2``."""
    m = [Fraction(0)] * n
    m[1] = Fraction(1)
    for order in range(2, n):
        # Residual of the equation up to eta^(order+1), with m[order] still zero.
        lhs = [Fraction(0)] * (n + 1)
        power = [Fraction(0)] * (n + 1)
        power[: len(m)] = m
        mu = list(power)
        for k in range(2, n + 2):
            power = mul(power, mu)
            coef = Fraction((-1) ** k, k)
            for i in range(n + 1):
                lhs[i] += coef * power[i]
        lhs[2] -= Fraction(1, 2)
        # m[order] enters lhs[order + 1] with coefficient 1 (from mu^2/2 -> m1 * m[order]).
        m[order] = -lhs[order + 1]
    return m


def stirling(k_max: int) -> list[Fraction]:
    """``g_k``: ``Gamma*(a) = exp(sum_m B_2m / (2m (2m-1) a^(2m-1)))`` as a series in ``1/a``."""
    n = k_max + 1
    log_series = [Fraction(0)] * n
    for m in range(1, n):
        if 2 * m - 1 < n:
            b = bernoulli(2 * m)
            log_series[2 * m - 1] = Fraction(int(b.p), int(b.q)) / (2 * m * (2 * m - 1))
    # exp of a series with zero constant term.
    out = [Fraction(0)] * n
    out[0] = Fraction(1)
    term = [Fraction(1)] + [Fraction(0)] * (n - 1)
    for k in range(1, n):
        term = [t / k for t in mul(term, log_series)]
        out = [o + t for o, t in zip(out, term, strict=True)]
    return out


def derive(orders: int, degree: int) -> tuple[list[Series], list[Fraction]]:
    pad = orders * 2 + 4  # derivatives and divisions by eta consume terms
    n = degree + pad
    mu = mu_series(n + 1)[:n]
    mu_over_eta = shift_down(mu)
    inv_mu_times_eta = inverse(mu_over_eta)  # eta / mu
    g = stirling(orders + 1)
    one = [Fraction(1)] + [Fraction(0)] * (n - 1)
    eta2_half = [Fraction(0)] * n
    eta2_half[2] = Fraction(1, 2)
    log_lambda = [m - e for m, e in zip(mu, eta2_half, strict=True)]
    # c_0 = 1/mu - 1/eta = (eta/mu - 1)/eta
    c = [shift_down([a - b for a, b in zip(inv_mu_times_eta, one, strict=True)])]
    for k in range(1, orders + 1):
        # (1/eta) c' + (-1)^k g_k / mu = (c' + (-1)^k g_k eta/mu) / eta
        d = derivative(c[-1])
        num = [x + (-1) ** k * g[k] * y for x, y in zip(d, inv_mu_times_eta, strict=True)]
        c.append(shift_down(num))
    b = []
    half_eta = [Fraction(0)] * n
    half_eta[1] = Fraction(1, 2)
    b0 = [x - y + z for x, y, z in zip(mu_over_eta, half_eta, mul(c[0], log_lambda), strict=True)]
    b.append(b0)
    for j in range(1, orders + 1):
        prev = c[j - 1]
        term = mul(c[j], log_lambda)
        dprev = mul(mu_over_eta, derivative(prev))
        b.append([t - p / 2 - dp - (j - 1) * p for t, p, dp in zip(term, prev, dprev, strict=True)])
    return [bj[: degree + 1] for bj in b], g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=6, help="powers of 1/a kept (j = 0..orders)")
    parser.add_argument("--degree", type=int, default=60, help="Taylor degree in eta")
    args = parser.parse_args()
    coefficients, g = derive(args.orders, args.degree)
    print("STIRLING = (")
    for v in g:
        print(f"    {float(v)!r},")
    print(")")
    print("B = (")
    for row in coefficients:
        print("    (")
        for v in row:
            print(f"        {float(v)!r},")
        print("    ),")
    print(")")


if __name__ == "__main__":
    main()
