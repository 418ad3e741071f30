"""Second derivatives through ``rsample``: per-sample ``d2z/dtheta2`` against closed forms or float64
finite differences, Hessians of expectations against closed forms (Monte Carlo), and the clear
error for the orders we do not support.

Monte Carlo Hessians use ``B`` independent copies of the parameters (a batch dimension), so one
double backward gives ``B`` independent estimates of each diagonal Hessian entry; the test is
``|mean - exact| < 6 * (std / sqrt(B))`` with ``B = 32``: Student t with 31 degrees of freedom,
two-sided false-alarm rate 1.1e-6 per entry checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import pytest
import torch
from torch import Tensor
from torch.distributions import Categorical, Normal

import reparam as rp
from reparam.distributions import (
    Chi2,
    Gamma,
    Implicit,
    InverseCDF,
    InverseGamma,
    MixtureSameFamily,
    StudentT,
    TruncatedNormal,
    VonMises,
)
from reparam.distributions.von_mises import _log_density, von_mises_cdf

F64 = torch.float64
B = 32
T_LIMIT = 6.0  # t(31), two-sided false-alarm rate 1.1e-6


def second(y: Tensor, x: Tensor) -> Tensor:
    """Elementwise ``d2 y_i / d x_i^2`` where ``y_i`` depends on ``x_i`` only (batched copies)."""
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x, retain_graph=True)
    return h


def assert_mc(estimates: Tensor, exact: float | Tensor) -> None:
    """``B`` independent estimates against ``exact`` (see module docstring for the threshold)."""
    mean, se = estimates.mean(), estimates.std() / math.sqrt(estimates.numel())
    assert abs(float(mean - exact)) < T_LIMIT * float(se) + 1e-12, (float(mean), float(exact), float(se))


def batch(value: float) -> Tensor:
    return torch.full((B,), value, dtype=F64, requires_grad=True)


# ------------------------------------------------------------------ generic: Implicit, InverseCDF, mixtures


def test_implicit_normal_per_sample_derivatives_beyond_the_first_are_zero() -> None:
    # z = loc + scale * eps exactly: dz/dloc = 1, dz/dscale = eps, every higher derivative is 0.
    loc = torch.tensor(0.5, dtype=F64, requires_grad=True)
    scale = torch.tensor(1.3, dtype=F64, requires_grad=True)
    z = Implicit(Normal(loc, scale)).rsample((64,))
    g = torch.autograd.grad(z.sum(), (loc, scale), create_graph=True)
    eps = (z.detach() - 0.5) / 1.3
    # Rounding only: 64 samples of O(1) terms, float64.
    assert abs(float(g[0].detach()) - 64) < 1e-11 and abs(float(g[1].detach() - eps.sum())) < 1e-11
    for first in g:  # orders 2, 3 and 4 in every combination of (loc, scale)
        frontier = [first]
        for _ in range(3):
            frontier = [d for f in frontier for d in torch.autograd.grad(f, (loc, scale), create_graph=True)]
            for d in frontier:
                assert abs(float(d.detach())) < 1e-11


def nth(y: Tensor, x: Tensor, order: int) -> list[Tensor]:
    """Elementwise ``d^k y_i / d x_i^k`` for ``k = 1..order`` (``y_i`` depends on ``x_i`` only)."""
    out = []
    for _ in range(order):
        (y,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        out.append(y)
    return out


class _Kumaraswamy(torch.distributions.Distribution):
    """A user-defined distribution: ``F(x) = 1 - (1 - x^a)^b`` on (0, 1), inverse in closed form.
    ``hidden=True`` reads ``a`` and ``b`` through a closure (not attributes): the graph-walk mode."""

    arg_constraints: ClassVar[dict] = {}
    support = torch.distributions.constraints.unit_interval

    def __init__(self, a: Tensor, b: Tensor, hidden: bool = False) -> None:
        if hidden:
            self.params = lambda: (a, b)
        else:
            self.a, self.b = a, b
            self.params = lambda: (self.a, self.b)
        super().__init__(a.shape, validate_args=False)

    @staticmethod
    def quantile(u: Tensor, a: Tensor, b: Tensor) -> Tensor:
        return (1 - (1 - u) ** (1 / b)) ** (1 / a)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        a, b = self.params()
        with torch.no_grad():
            return self.quantile(torch.rand(sample_shape + self.batch_shape, dtype=a.dtype), a, b)

    def cdf(self, x: Tensor) -> Tensor:
        a, b = self.params()
        return 1 - (1 - x**a) ** b

    def log_prob(self, x: Tensor) -> Tensor:
        a, b = self.params()
        return torch.log(a * b) + (a - 1) * torch.log(x) + (b - 1) * torch.log1p(-(x**a))


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("which", ["a", "b"])
def test_implicit_user_distribution_fourth_order_matches_closed_form(hidden: bool, which: str) -> None:
    a = torch.full((16,), 1.7, dtype=F64, requires_grad=True)  # one parameter pair per sample
    b = torch.full((16,), 2.4, dtype=F64, requires_grad=True)
    z = Implicit(_Kumaraswamy(a, b, hidden)).rsample()
    x = a if which == "a" else b
    got = nth(z, x, 4)
    u = _Kumaraswamy(a, b).cdf(z.detach()).detach()  # the sample's own u, held fixed
    want = nth(_Kumaraswamy.quantile(u, a, b), x, 4)
    # Both exact up to rounding in float64 (the closed form's derivatives are O(10) here, and
    # samples near 0 or 1 lose a few digits in 1 - (1 - u)^(1/b)).
    for k in range(4):
        torch.testing.assert_close(got[k], want[k], rtol=1e-7, atol=1e-9)


def _mixture(logit: Tensor, s: Tensor) -> MixtureSameFamily:
    """Weights softmax(0, logit); components N(-1, s^2), N(2, (s/2)^2)."""
    logits = torch.stack([torch.zeros_like(logit), logit], -1)
    c = torch.tensor([-1.0, 2.0], dtype=F64)
    r = torch.tensor([1.0, 0.5], dtype=F64)
    return MixtureSameFamily(Categorical(logits=logits), Normal(c, s.unsqueeze(-1) * r))


def _mixture_quantile(u: Tensor, logit: Tensor, s: Tensor, start: Tensor, steps: int) -> Tensor:
    """Newton on the float64 mixture CDF from ``start``: ``F(z; logit, s) = u``. Differentiable:
    from a start with no derivative, ``k`` unrolled steps give derivatives exact to order
    ``2^k - 1`` (each step doubles the order of contact)."""
    q = _mixture(logit, s)
    comp = q.component_distribution
    w = torch.softmax(q.mixture_distribution.logits, -1)
    z = start
    for _ in range(steps):
        cdf = (w * comp.cdf(z.unsqueeze(-1))).sum(-1)
        pdf = (w * comp.log_prob(z.unsqueeze(-1)).exp()).sum(-1)
        z = z - (cdf - u) / pdf
    return z


@pytest.mark.parametrize("which", ["logit", "scale"])
def test_mixture_per_sample_third_and_fourth_derivatives(which: str) -> None:
    logit = torch.full((32,), 0.3, dtype=F64, requires_grad=True)
    s = torch.full((32,), 1.2, dtype=F64, requires_grad=True)
    z = _mixture(logit, s).rsample()
    x = logit if which == "logit" else s
    got = nth(z, x, 4)
    z0 = z.detach()
    u = _mixture(logit.detach(), s.detach()).cdf(z0)
    want = nth(_mixture_quantile(u, logit, s, z0, steps=4), x, 4)  # exact through order 15
    # Both exact up to float64 rounding (derivatives are O(1)-O(100); 1/p amplifies in the tails).
    for k in range(4):
        torch.testing.assert_close(got[k], want[k], rtol=1e-7, atol=1e-8)
    # The reference itself against central differences of the converged float64 quantile (third
    # derivative), Richardson-extrapolated over h = 4e-3, 2e-3: truncation ~h^4 Q^(7) (up to
    # ~5e-6 absolute on O(0.01-100) values here), rounding ~1e-16 |Q| / h^3 ~ 1e-7.
    def third(h: float) -> Tensor:
        with torch.no_grad():
            qs = [
                _mixture_quantile(u, *((logit + k * h, s) if which == "logit" else (logit, s + k * h)), z0, 9)
                for k in (-2.0, -1.0, 1.0, 2.0)
            ]
        return (qs[3] - 2 * qs[2] + 2 * qs[1] - qs[0]) / (2 * h**3)

    extrapolated = (4 * third(2e-3) - third(4e-3)) / 3
    torch.testing.assert_close(want[2].detach(), extrapolated, rtol=1e-3, atol=3e-5)


@pytest.mark.parametrize("wrapper", [Implicit, InverseCDF])
def test_hessian_of_expected_square_normal(wrapper: type) -> None:
    # E[z^2] = loc^2 + scale^2: d2/dloc2 = d2/dscale2 = 2. Per sample d2(z^2)/dloc2 = 2 exactly.
    loc, scale = batch(0.5), batch(1.0)
    z = wrapper(Normal(loc, scale)).rsample((2000,))
    loss = (z**2).mean(0)
    torch.testing.assert_close(second(loss, loc), torch.full((B,), 2.0, dtype=F64), rtol=1e-9, atol=1e-9)
    assert_mc(second(loss, scale), 2.0)


def test_expect_pathwise_hessian_through_implicit() -> None:
    loc = torch.tensor(0.5, dtype=F64, requires_grad=True)
    q = Implicit(Normal(loc, torch.tensor(1.0, dtype=F64)))
    value = rp.expect(lambda z: z**2, q, rp.Pathwise(), num_samples=256)
    (g,) = torch.autograd.grad(value, loc, create_graph=True)
    (h,) = torch.autograd.grad(g, loc)
    assert abs(float(h) - 2.0) < 1e-9  # exact per sample (z' = 1, z'' = 0)


def test_mixture_hessians_of_expected_square() -> None:
    # Components N(loc + c_k, (scale r_k)^2), weights softmax(logits):
    # E[z^2] = sum_k w_k ((loc + c_k)^2 + scale^2 r_k^2).
    loc, scale, logit = batch(0.5), batch(1.0), batch(0.3)
    c = torch.tensor([-1.0, 2.0], dtype=F64)
    r = torch.tensor([1.0, 0.5], dtype=F64)
    logits = torch.stack([torch.zeros_like(logit), logit], -1)
    comp = Normal(loc.unsqueeze(-1) + c, scale.unsqueeze(-1) * r)
    z = MixtureSameFamily(Categorical(logits=logits), comp).rsample((3000,))
    loss = (z**2).mean(0)
    # loc shifts every component: z' = 1, z'' = 0 per sample.
    torch.testing.assert_close(second(loss, loc), torch.full((B,), 2.0, dtype=F64), rtol=1e-8, atol=1e-8)
    w = torch.softmax(torch.tensor([0.0, 0.3], dtype=F64), 0)
    assert_mc(second(loss, scale), float(2.0 * (w * r**2).sum()))
    a = (0.5 + c) ** 2 + r**2  # E[z^2 | k]
    w1 = w[1]  # d2/dl2 of w1 a1 + (1 - w1) a0 with w1 = sigmoid(l): w1 (1 - w1)(1 - 2 w1) (a1 - a0)
    assert_mc(second(loss, logit), float(w1 * (1 - w1) * (1 - 2 * w1) * (a[1] - a[0])))


def test_diagonal_mixture_hessians_of_a_cross_dimension_cost() -> None:
    # Components Independent(N(loc + c_kd, (scale r_kd)^2)): E[z_0 z_1] = sum_k w_k m_k0 m_k1 does
    # not depend on scale (d2/dscale2 = 0, Monte Carlo through the conditional CDFs), and z is
    # loc plus a loc-free variable, so d2(z_0 z_1)/dloc2 = 2 per sample.
    loc, scale = batch(0.2), batch(1.0)
    c = torch.tensor([[1.0, -0.5], [-1.0, 0.7]], dtype=F64)
    r = torch.tensor([[1.0, 0.6], [0.8, 1.5]], dtype=F64)
    comp = torch.distributions.Independent(Normal(loc[:, None, None] + c, scale[:, None, None] * r), 1)
    q = MixtureSameFamily(Categorical(logits=torch.tensor([0.1, -0.2], dtype=F64).expand(B, 2)), comp)
    z = q.rsample((3000,))
    loss = (z[..., 0] * z[..., 1]).mean(0)
    torch.testing.assert_close(second(loss, loc), torch.full((B,), 2.0, dtype=F64), rtol=1e-8, atol=1e-8)
    assert_mc(second(loss, scale), 0.0)


# ------------------------------------------------------------------ Gamma and the classes built on it


def _gamma_quantile_second(alpha: float, x: Tensor) -> Tensor:
    """``d2x/dalpha2`` at fixed ``u = P(alpha, x)`` by float64 differences of scipy's inverse."""
    from scipy import special

    u = special.gammainc(alpha, x.numpy())
    h = 1e-3 * min(alpha, math.sqrt(alpha))
    q = [special.gammaincinv(alpha + k * h, u) for k in (-2, -1, 0, 1, 2)]
    # Fourth-order stencil: truncation ~h^4, rounding ~1e-15/h^2 relative.
    d2 = (-q[0] + 16 * q[1] - 30 * q[2] + 16 * q[3] - q[4]) / (12 * h * h)
    return torch.from_numpy(d2)


@pytest.mark.parametrize("alpha", [0.3, 2.5, 30.0])
def test_gamma_per_sample_second_derivative_matches_inverse_differences(alpha: float) -> None:
    a = torch.full((8,), alpha, dtype=F64, requires_grad=True)  # one concentration per sample
    z = Gamma(a, torch.ones((), dtype=F64)).rsample()
    got = second(z, a)
    want = _gamma_quantile_second(alpha, z.detach())
    # Reference differences good to ~1e-6 relative; ours ~1e-7 (Richardson, module docstring).
    torch.testing.assert_close(got, want, rtol=2e-5, atol=1e-9)


def test_gamma_hessians_of_moments() -> None:
    # E[z] = a/b: d2/da2 = 0, d2/db2 = 2a/b^3; E[z^2] = a(a+1)/b^2: d2/da2 = 2/b^2.
    a, b = batch(2.5), batch(1.5)
    z = Gamma(a, b).rsample((2000,))
    assert_mc(second(z.mean(0), a), 0.0)
    assert_mc(second(z.mean(0), b), 2 * 2.5 / 1.5**3)
    assert_mc(second((z**2).mean(0), a), 2 / 1.5**2)


def test_chi2_inverse_gamma_student_t_hessians() -> None:
    k = batch(5.0)  # Chi2: E[z^2] = k (k + 2): d2/dk2 = 2
    assert_mc(second((Chi2(k).rsample((2000,)) ** 2).mean(0), k), 2.0)
    a = batch(6.0)  # InverseGamma(a, 2): E[z] = 2/(a - 1): d2/da2 = 4/(a - 1)^3
    assert_mc(second(InverseGamma(a, torch.tensor(2.0, dtype=F64)).rsample((2000,)).mean(0), a), 4 / 5**3)
    df = batch(10.0)  # StudentT: E[z^2] = df/(df - 2) = 1 + 2/(df - 2): d2/ddf2 = 4/(df - 2)^3
    z = StudentT(df, torch.zeros((), dtype=F64), torch.ones((), dtype=F64)).rsample((4000,))
    assert_mc(second((z**2).mean(0), df), 4 / 8**3)


# ------------------------------------------------------------------ TruncatedNormal (exact at every order)


@pytest.mark.parametrize("bounds", [(-1.0, 2.0), (-math.inf, -3.0), (4.0, math.inf)])
def test_truncated_normal_per_sample_hessian_matches_differences(bounds: tuple[float, float]) -> None:
    base = {"loc": 0.3, "scale": 1.2, "low": bounds[0], "high": bounds[1]}
    names = [n for n, v in base.items() if math.isfinite(v)]
    u = torch.rand(4, dtype=F64)

    def grad_at(shift: dict[str, float], create_graph: bool = False) -> tuple[list[Tensor], dict]:
        p = {n: torch.tensor(v + shift.get(n, 0.0), dtype=F64, requires_grad=True) for n, v in base.items()}
        z = TruncatedNormal(**p).icdf(u)[0]
        return list(torch.autograd.grad(z, [p[n] for n in names], create_graph=create_graph)), p

    g, p = grad_at({}, create_graph=True)
    params = [p[n] for n in names]
    got = torch.stack([torch.stack(torch.autograd.grad(gi, params, retain_graph=True)) for gi in g])
    h = 1e-5
    want = torch.stack(
        [(torch.stack(grad_at({m: h})[0]) - torch.stack(grad_at({m: -h})[0])) / (2 * h) for m in names], 1
    )
    # Central differences: truncation ~h^2 = 1e-10, rounding ~1e-16/h = 1e-11.
    torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-8)


def test_truncated_normal_hessian_of_mean() -> None:
    # Exact: autograd twice through the closed-form mean (JKB ch. 13.10).
    loc, scale = batch(0.3), batch(1.2)
    z = TruncatedNormal(loc, scale, -1.0, 2.0).rsample((2000,))
    exact_loc = second(TruncatedNormal(loc, scale, -1.0, 2.0).mean, loc)
    exact_scale = second(TruncatedNormal(loc, scale, -1.0, 2.0).mean, scale)
    assert_mc(second(z.mean(0), loc) - exact_loc, 0.0)
    assert_mc(second(z.mean(0), scale) - exact_scale, 0.0)


# ------------------------------------------------------------------ VonMises


def _von_mises_quantile(z: Tensor, u: Tensor, kappa: float) -> Tensor:
    """Newton on the float64 CDF from ``z``: the sample with ``F(z; kappa) = u``."""
    k = torch.tensor(kappa, dtype=F64)
    for _ in range(30):
        z = z - (von_mises_cdf(z, k) - u) / torch.exp(_log_density(z, k))
    return z


@pytest.mark.parametrize("kappa", [0.5, 3.0, 80.0])
def test_von_mises_per_sample_second_derivative(kappa: float) -> None:
    k = torch.tensor(kappa, dtype=F64, requires_grad=True)
    z = VonMises(torch.zeros((), dtype=F64), k).rsample((6,))
    firsts = [torch.autograd.grad(z[i], k, create_graph=True)[0] for i in range(6)]
    got = torch.stack([torch.autograd.grad(g, k, retain_graph=True)[0] for g in firsts])
    z0 = z.detach()
    u = von_mises_cdf(z0, k.detach())
    h = 1e-3 * min(kappa, math.sqrt(kappa))
    q = [_von_mises_quantile(z0, u, kappa + s * h) for s in (-1, 0, 1)]
    want = (q[0] - 2 * q[1] + q[2]) / (h * h)
    # Truncation ~h^2 (1e-6..1e-5 relative), our Richardson ~1e-8.
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("kappa", [0.5, 49.9, 80.0])
def test_von_mises_cdf_second_derivative_in_kappa(kappa: float) -> None:
    x = torch.tensor([0.3, -1.0, 2.0], dtype=F64)
    k = torch.tensor(kappa, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(von_mises_cdf(x, k).sum(), k, create_graph=True)
    (got,) = torch.autograd.grad(g, k)
    h = 1e-3 * min(kappa, math.sqrt(kappa))
    f = [von_mises_cdf(x, torch.tensor(kappa + s * h, dtype=F64)).sum() for s in (-2, -1, 0, 1, 2)]
    want = (-f[0] + 16 * f[1] - 30 * f[2] + 16 * f[3] - f[4]) / (12 * h * h)
    # Fourth-order stencil: rounding 1e-16/h^2 <= 1e-8 absolute.
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-8)


def test_von_mises_hessian_of_expected_cosine() -> None:
    # E[cos z] = I1(kappa)/I0(kappa) (loc 0): exact d2/dkappa2 by autograd through i1e/i0e.
    k = batch(2.0)
    z = VonMises(torch.zeros((), dtype=F64), k).rsample((2000,))
    exact = second(torch.special.i1e(k) / torch.special.i0e(k), k)
    assert_mc(second(torch.cos(z).mean(0), k) - exact, 0.0)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda t: Gamma(t, torch.ones((), dtype=F64)), "Gamma"),
        (lambda t: VonMises(torch.zeros((), dtype=F64), t), "VonMises"),
    ],
)
def test_third_derivative_raises_a_clear_error(make: Callable[[Tensor], object], name: str) -> None:
    t = torch.tensor(2.0, dtype=F64, requires_grad=True)
    z = make(t).rsample((4,))  # type: ignore[attr-defined]
    (g,) = torch.autograd.grad((z**2).sum(), t, create_graph=True)
    (h,) = torch.autograd.grad(g, t, create_graph=True)
    with pytest.raises(RuntimeError, match=rf"{name}.*order 3"):
        torch.autograd.grad(h, t)
