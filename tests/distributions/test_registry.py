"""The generic test: every distribution in ``reparam.distributions`` against an independent reference.

One registry of examples (every class, several parameter values, extremes included) and four
checks applied to each, as torch's and distrax's distribution suites do:

1. samples pass a Kolmogorov-Smirnov test against scipy (threshold p > 1e-3: under the null
   the p-value is uniform, and the seed is fixed, so the test is reproducible);
2. ``log_prob`` and ``cdf`` match scipy to 1e-8 (everything runs in float64);
3. the per-sample derivative ``dz/dtheta`` matches the float64 implicit-function reference
   ``-(dF/dtheta)/p`` with ``dF/dtheta`` from Richardson-extrapolated central differences of
   scipy's CDF (or survival function on the upper half, to avoid cancellation);
4. ``rp.expect(f, q, rp.Pathwise())`` is unbiased: over ``N`` independent one-sample
   estimates, ``|mean - exact| < 5 SE`` (+ a 1e-6 allowance for the finite-difference error of
   the exact value), where ``SE = sd / sqrt(N)``; exact values are closed forms or scipy
   quadrature, differentiated by the same Richardson differences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import pytest
import torch
from scipy import integrate, special, stats
from torch.distributions import Categorical, Distribution, Exponential, Normal

import reparam as rp
from reparam.distributions import (
    Beta,
    Chi2,
    Dirichlet,
    Gamma,
    Implicit,
    InverseCDF,
    InverseGamma,
    MixtureSameFamily,
    StudentT,
    TruncatedNormal,
    VonMises,
)

INF = math.inf


class Logistic(Distribution):
    """A user's own distribution: only ``sample``, ``log_prob`` and ``cdf`` (for ``Implicit``)."""

    arg_constraints = {}  # noqa: RUF012
    support = torch.distributions.constraints.real

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor) -> None:
        self.loc, self.scale = torch.broadcast_tensors(loc, scale)
        super().__init__(self.loc.shape, validate_args=False)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            u = torch.rand(self._extended_shape(sample_shape), dtype=self.loc.dtype)
            return self.loc + self.scale * (torch.log(u) - torch.log1p(-u))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        y = (value - self.loc) / self.scale
        return -y - 2 * torch.nn.functional.softplus(-y) - torch.log(self.scale)

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid((value - self.loc) / self.scale)


class VonMisesRef:
    """Float64 reference for the von Mises by quadrature (scipy's CDF is a crude normal
    approximation above concentration 50). Angles are measured on ``[-pi, pi)``."""

    def __init__(self, loc: float, concentration: float) -> None:
        self.loc, self.kappa = loc, concentration
        self.ratio = special.i1e(concentration) / special.i0e(concentration)

    def pdf0(self, x: np.ndarray) -> np.ndarray:
        return np.exp(self.kappa * (np.cos(x) - 1.0)) / (2 * np.pi * special.i0e(self.kappa))

    def _cdf0(self, x: float) -> float:
        kw = {"epsabs": 0.0, "epsrel": 1e-13, "limit": 200}
        return 0.5 + integrate.quad(self.pdf0, 0.0, x, **kw)[0]

    def cdf(self, z: np.ndarray) -> np.ndarray:
        wrap = lambda v: np.remainder(v + np.pi, 2 * np.pi) - np.pi  # noqa: E731
        start = self._cdf0(wrap(-np.pi - self.loc))
        return np.remainder(np.array([self._cdf0(wrap(v - self.loc)) for v in np.atleast_1d(z)]) - start, 1.0)

    def logpdf(self, z: np.ndarray) -> np.ndarray:
        return np.log(self.pdf0(z - self.loc))

    def dz_dconcentration(self, z: np.ndarray) -> np.ndarray:
        # dF/dkappa = int_0^x p(t) (cos t - I1/I0) dt (the integral over [-pi, 0] vanishes).
        x = np.remainder(z - self.loc + np.pi, 2 * np.pi) - np.pi
        kw = {"epsabs": 0.0, "epsrel": 1e-12, "limit": 200}
        d = [integrate.quad(lambda t: self.pdf0(t) * (np.cos(t) - self.ratio), 0, v, **kw)[0] for v in x]
        return -np.array(d) / self.pdf0(x)


class MixtureRef:
    def __init__(self, logits: list[float], locs: list[float], scales: list[float]) -> None:
        self.w = special.softmax(np.array(logits))
        self.parts = [stats.norm(m, s) for m, s in zip(locs, scales, strict=True)]

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return sum(w * p.cdf(x) for w, p in zip(self.w, self.parts, strict=True))

    def sf(self, x: np.ndarray) -> np.ndarray:
        return sum(w * p.sf(x) for w, p in zip(self.w, self.parts, strict=True))

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        return np.log(sum(w * p.pdf(x) for w, p in zip(self.w, self.parts, strict=True)))


class DirichletRef:
    def __init__(self, alpha: list[float]) -> None:
        self.alpha = np.array(alpha)
        self.marginal = stats.beta(alpha[0], sum(alpha) - alpha[0])

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        return stats.dirichlet(self.alpha).logpdf(x.T / x.sum(-1))


@dataclass(frozen=True)
class Example:
    """One registry entry. ``build`` and ``ref`` take the parameters as keywords (tensors for
    ``build``, floats for ``ref``); ``moment`` is ``E[f]`` in float64 for given float params."""

    name: str
    build: Callable[..., Distribution]
    params: dict[str, float]
    ref: Callable[..., Any]
    f: Callable[[torch.Tensor], torch.Tensor]
    moment: Callable[..., float]
    implicit: bool = True  # the per-sample derivative is the implicit one of this CDF
    unbiased: bool = True  # run the unbiasedness check (off where the estimator's variance is infinite)
    has_cdf: bool = True
    event: bool = False  # event_dim 1: KS on coordinate 0 against ref.marginal
    grad_ref: Callable[..., dict[str, np.ndarray]] | None = None
    skip_grad: tuple[str, ...] = field(default=())
    # independent one-sample estimates in the unbiasedness check: more where the per-sample
    # gradient is so heavy-tailed that 4000 draws underestimate its standard error
    repeats: int = 4000


def quad_moment(dist: Any, f: Callable[[float], float], lo: float = -INF, hi: float = INF) -> float:
    return integrate.quad(lambda z: f(z) * dist.pdf(z), lo, hi, epsabs=1e-13, epsrel=1e-12, limit=400)[0]


def truncnorm_ref(loc: float, scale: float, low: float, high: float) -> Any:
    return stats.truncnorm((low - loc) / scale, (high - loc) / scale, loc=loc, scale=scale)


def _truncnorm_example(loc: float, scale: float, low: float, high: float) -> Example:
    def second_moment(**p: float) -> float:
        ref = truncnorm_ref(**p)
        return ref.var() + ref.mean() ** 2

    params = {"loc": loc, "scale": scale, "low": low, "high": high}
    return Example(
        f"truncated-normal[{low},{high}]",
        lambda **p: TruncatedNormal(p["loc"], p["scale"], p["low"], p["high"]),
        params,
        truncnorm_ref,
        lambda z: z**2,
        second_moment,
        grad_ref=_truncnorm_grad_ref,
    )


def _truncnorm_grad_ref(ref: Any, z: np.ndarray) -> dict[str, np.ndarray]:
    """``-(dF/dtheta)/p`` in 50-digit arithmetic (mpmath): float64 differences of scipy's CDF
    lose up to 1e-2 relative accuracy 40 scales out, where ``dz/dloc = 1 - dz/dhigh`` is tiny."""
    loc, scale = ref.kwds["loc"], ref.kwds["scale"]
    a, b = ref.a, ref.b
    theta = {"loc": loc, "scale": scale, "low": loc + a * scale, "high": loc + b * scale}
    with mpmath.workdps(50):

        def cdf(zi: Any, loc: Any, scale: Any, low: Any, high: Any) -> Any:
            lo = mpmath.ncdf((low - loc) / scale) if mpmath.isfinite(low) else mpmath.mpf(0)
            hi = mpmath.ncdf((high - loc) / scale) if mpmath.isfinite(high) else mpmath.mpf(1)
            return (mpmath.ncdf((zi - loc) / scale) - lo) / (hi - lo)

        out: dict[str, list[float]] = {k: [] for k in theta if math.isfinite(theta[k])}
        for zi in z:
            mz = mpmath.mpf(float(zi))
            point = {k: mpmath.mpf(v) for k, v in theta.items()}
            density = mpmath.diff(lambda t, point=point: cdf(t, **point), mz)
            for name in out:
                d = mpmath.diff(
                    lambda t, name=name, mz=mz, point=point: cdf(mz, **{**point, name: t}), point[name]
                )
                out[name].append(float(-d / density))
    return {k: np.array(v) for k, v in out.items()}


def _von_mises_example(kappa: float) -> Example:
    return Example(
        f"von-mises[{kappa}]",
        lambda **p: VonMises(p["loc"], p["concentration"]),
        {"loc": 0.5, "concentration": kappa},
        VonMisesRef,
        lambda z: torch.cos(z - 0.3),
        lambda loc, concentration: (
            math.cos(loc - 0.3) * special.i1e(concentration) / special.i0e(concentration)
        ),
        grad_ref=lambda ref, z: {"loc": np.ones_like(z), "concentration": ref.dz_dconcentration(z)},
    )


def _gamma_example(alpha: float) -> Example:
    return Example(
        f"gamma[{alpha}]",
        lambda **p: Gamma(p["concentration"], p["rate"]),
        {"concentration": alpha, "rate": 1.5},
        lambda concentration, rate: stats.gamma(concentration, scale=1 / rate),
        lambda z: z**2,
        lambda concentration, rate: concentration * (concentration + 1) / rate**2,
        # At alpha = 1e-4 the per-sample gradient 2 z dz/dalpha is zero but for a ~1e-4 fraction
        # of samples: its standard error from 4000 draws is meaningless. At alpha = 0.01 about 1%
        # of draws carry the gradient (kurtosis ~ 1/alpha): 4000 draws leave ~40 of them and the
        # sample standard error is too small in ~1 run of 20; 200,000 leave ~2000.
        unbiased=alpha >= 0.01,
        repeats=200_000 if alpha < 0.1 else 4000,
    )


def _beta_example(a: float, b: float) -> Example:
    return Example(
        f"beta[{a},{b}]",
        lambda **p: Beta(p["a"], p["b"]),
        {"a": a, "b": b},
        lambda a, b: stats.beta(a, b),
        lambda z: z**2,
        lambda a, b: a * (a + 1) / ((a + b) * (a + b + 1)),
        # The implicit derivative of the Beta CDF (at 1e-4 the samples are float64's end atoms).
        implicit=min(a, b) >= 0.01,
        has_cdf=False,
        unbiased=min(a, b) >= 0.01,
    )


def _mixture_build(**p: torch.Tensor) -> Distribution:
    logits = torch.stack([p["logit0"], torch.zeros_like(p["logit0"]), p["logit2"]], -1)
    locs = torch.stack([p["loc0"], torch.full_like(p["loc0"], 0.5), p["loc2"]], -1)
    scales = torch.stack([p["scale0"], torch.ones_like(p["scale0"]), p["scale2"]], -1)
    return MixtureSameFamily(Categorical(logits=logits), Normal(locs, scales))


def _mixture_ref(**p: float) -> MixtureRef:
    return MixtureRef(
        [p["logit0"], 0.0, p["logit2"]], [p["loc0"], 0.5, p["loc2"]], [p["scale0"], 1.0, p["scale2"]]
    )


def _mixture_moment(**p: float) -> float:
    ref = _mixture_ref(**p)
    return float(sum(w * (d.mean() ** 2 + d.var()) for w, d in zip(ref.w, ref.parts, strict=True)))


def _dirichlet_moment(alpha0: float, alpha1: float, alpha2: float) -> float:
    total = alpha0 + alpha1 + alpha2
    return alpha0 * (alpha0 + 1) / (total * (total + 1)) + alpha1 / total


EXAMPLES = [
    Example(
        "implicit-normal",
        lambda **p: Implicit(Normal(p["loc"], p["scale"])),
        {"loc": 0.3, "scale": 1.7},
        lambda loc, scale: stats.norm(loc, scale),
        lambda z: z**2,
        lambda loc, scale: loc**2 + scale**2,
    ),
    Example(
        "implicit-user-logistic",
        lambda **p: Implicit(Logistic(p["loc"], p["scale"])),
        {"loc": -1.0, "scale": 0.6},
        lambda loc, scale: stats.logistic(loc, scale),
        lambda z: z**2,
        lambda loc, scale: loc**2 + scale**2 * math.pi**2 / 3,
    ),
    Example(
        "inverse-cdf-exponential",
        lambda **p: InverseCDF(Exponential(p["rate"])),
        {"rate": 2.5},
        lambda rate: stats.expon(scale=1 / rate),
        lambda z: z**2,
        lambda rate: 2 / rate**2,
    ),
    Example(
        "inverse-cdf-normal",
        lambda **p: InverseCDF(Normal(p["loc"], p["scale"])),
        {"loc": -2.0, "scale": 0.4},
        lambda loc, scale: stats.norm(loc, scale),
        lambda z: torch.sin(z),
        lambda loc, scale: math.sin(loc) * math.exp(-(scale**2) / 2),
    ),
    _truncnorm_example(0.0, 1.0, -1.0, 2.0),
    _truncnorm_example(0.5, 2.0, -INF, 0.0),
    _truncnorm_example(0.0, 1.0, 8.0, INF),
    _truncnorm_example(1.0, 0.5, 6.0, 6.5),
    _truncnorm_example(0.0, 1.0, -INF, -40.0),
    _von_mises_example(1e-3),
    _von_mises_example(1.0),
    _von_mises_example(30.0),
    _von_mises_example(1e3),
    _von_mises_example(1e4),
    Example(
        "mixture-normal",
        _mixture_build,
        {"logit0": 0.4, "logit2": -0.3, "loc0": -2.0, "loc2": 3.0, "scale0": 0.5, "scale2": 1.5},
        _mixture_ref,
        lambda z: z**2,
        _mixture_moment,
    ),
    _gamma_example(1e-4),
    _gamma_example(0.01),
    _gamma_example(0.5),
    _gamma_example(3.0),
    _gamma_example(20.0),
    _gamma_example(200.0),
    _gamma_example(1e4),
    Example(
        "chi2",
        lambda **p: Chi2(p["df"]),
        {"df": 3.0},
        lambda df: stats.chi2(df),
        lambda z: torch.sqrt(z),
        lambda df: math.sqrt(2) * math.exp(special.gammaln((df + 1) / 2) - special.gammaln(df / 2)),
    ),
    Example(
        "inverse-gamma",
        lambda **p: InverseGamma(p["concentration"], p["rate"]),
        {"concentration": 0.7, "rate": 2.0},
        lambda concentration, rate: stats.invgamma(concentration, scale=rate),
        lambda z: 1 / (1 + z),
        lambda **p: quad_moment(
            stats.invgamma(p["concentration"], scale=p["rate"]), lambda z: 1 / (1 + z), 0
        ),
    ),
    _beta_example(0.5, 2.0),
    _beta_example(50.0, 3.0),
    _beta_example(1e-4, 1e-4),
    Example(
        "dirichlet",
        lambda **p: Dirichlet(torch.stack([p["alpha0"], p["alpha1"], p["alpha2"]], -1)),
        {"alpha0": 0.3, "alpha1": 1.5, "alpha2": 4.0},
        lambda **p: DirichletRef([p["alpha0"], p["alpha1"], p["alpha2"]]),
        lambda z: z[..., 0] ** 2 + z[..., 1],
        _dirichlet_moment,
        implicit=False,
        has_cdf=False,
        event=True,
    ),
    Example(
        "student-t",
        lambda **p: StudentT(p["df"], p["loc"], p["scale"]),
        {"df": 2.5, "loc": 0.2, "scale": 1.3},
        lambda df, loc, scale: stats.t(df, loc, scale),
        torch.tanh,
        lambda df, loc, scale: quad_moment(stats.t(df, loc, scale), math.tanh),
        implicit=False,
        has_cdf=False,
    ),
]
IDS = [e.name for e in EXAMPLES]


def tensors(params: dict[str, float], n: int | None = None, grad: bool = False) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in params.items():
        t = torch.tensor(v, dtype=torch.float64)
        if n is not None:
            t = t.repeat(n)
        out[k] = t.requires_grad_(grad and math.isfinite(v))
    return out


def richardson(fn: Callable[[float], np.ndarray], theta: float, rel: float = 1e-4) -> np.ndarray:
    """``d fn / d theta`` by central differences at ``h`` and ``h/2``, Richardson-combined (O(h^4)),
    with ``h = rel |theta|`` (``rel`` at ``theta = 0``)."""
    h = rel * abs(theta) if theta != 0 else rel
    d1 = (fn(theta + h) - fn(theta - h)) / (2 * h)
    d2 = (fn(theta + h / 2) - fn(theta - h / 2)) / h
    return (4 * d2 - d1) / 3


def goodness_of_fit(x: np.ndarray, ref: Any) -> None:
    """KS test, allowing for the atoms float64 puts at its ends.

    Samples below the smallest normal number (gamma, beta at concentration 1e-4) are clamped to
    it, and beta samples within an ulp of 1 round to the largest double below 1, so repeated
    extreme values are atoms. Each atom's count must match ``n F(atom)`` (or ``n S(atom)``)
    within 5 binomial standard errors; the samples strictly inside pass a KS test against
    the reference conditioned on the inside.
    """
    n = len(x)
    lo, hi = x.min(), x.max()
    lo_atom, hi_atom = (x == lo).sum() > 1, (x == hi).sum() > 1
    f_lo = float(ref.cdf(lo)) if lo_atom else 0.0
    s_hi = float(1 - ref.cdf(hi)) if hi_atom else 0.0
    for atom, count, p in ((lo_atom, (x == lo).sum(), f_lo), (hi_atom, (x == hi).sum(), s_hi)):
        if atom:
            assert abs(count - n * p) < 5 * math.sqrt(n * p * (1 - p)) + 1, (count, n * p)
    inside = x[(~lo_atom | (x > lo)) & (~hi_atom | (x < hi))]
    mass = 1.0 - f_lo - s_hi
    assert stats.kstest(inside, lambda v: (ref.cdf(v) - f_lo) / mass).pvalue > 1e-3


# Classes outside the generic registry, each with its own test file (the generic checks assume
# an absolutely continuous law, a CDF whose implicit derivative is the sample's, or a scipy
# reference, and each of these breaks one of them):
TESTED_ELSEWHERE = {
    # atoms at 0 and 1 (mixed law): log_prob is a density w.r.t. delta_0 + Lebesgue + delta_1
    # and the pathwise derivative is 0 on the atoms, not -(dF/dtheta)/p; tests/distributions/
    # test_hard_concrete.py checks atoms, CDF and unbiasedness against closed forms
    "HardConcrete",
    # the same mixed law with a clamped normal inside: tests/distributions/test_gaussian_gate.py
    "GaussianGate",
    # relaxed k-subsets: simplex-like vectors with no scipy reference, no CDF; log_prob is the
    # Gumbel perturbation's: tests/distributions/test_relaxed_top_k.py
    "RelaxedTopK",
    # softmax++ of a Gaussian (simplex-valued, no scipy reference, no CDF):
    # tests/distributions/test_invertible_gaussian.py
    "InvertibleGaussian",
}


def test_registry_covers_every_class() -> None:
    covered = {type(e.build(**tensors(e.params))).__name__ for e in EXAMPLES}
    d = rp.distributions
    exported = {name for name in d.__all__ if isinstance(getattr(d, name), type)}  # classes only
    assert covered | TESTED_ELSEWHERE == exported
    assert not covered & TESTED_ELSEWHERE  # an entry moved into the registry leaves the set


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_samples_match_scipy(example: Example) -> None:
    dist = example.build(**tensors(example.params))
    z = dist.sample((2000,))
    assert z.dtype == torch.float64
    assert torch.isfinite(z).all()
    ref = example.ref(**example.params)
    x = z.numpy()
    if example.event:
        assert stats.kstest(x[:, 0], ref.marginal.cdf).pvalue > 1e-3
    else:
        goodness_of_fit(x, ref)
    lp = dist.log_prob(z[:200]).numpy()
    np.testing.assert_allclose(lp, ref.logpdf(x[:200]), rtol=1e-8, atol=1e-8)
    if example.has_cdf:
        np.testing.assert_allclose(dist.cdf(z[:200]).numpy(), ref.cdf(x[:200]), rtol=1e-8, atol=1e-12)


IMPLICIT = [e for e in EXAMPLES if e.implicit]
UNBIASED = [e for e in EXAMPLES if e.unbiased]


@pytest.mark.parametrize("example", IMPLICIT, ids=[e.name for e in IMPLICIT])
def test_per_sample_derivative_matches_float64_reference(example: Example) -> None:
    params = tensors(example.params, grad=True)
    z = example.build(**params).rsample((60,))
    x = z.detach().numpy()
    ref = example.ref(**example.params)
    if example.grad_ref is not None:
        expected = example.grad_ref(ref, x)
    else:
        density = np.exp(ref.logpdf(x))
        upper = ref.cdf(x) > 0.5
        expected = {}
        for name, value in example.params.items():
            if name in example.skip_grad:
                continue

            def cdf_at(theta: float, name: str = name) -> np.ndarray:
                r = example.ref(**{**example.params, name: theta})
                return np.where(upper, -r.sf(x), r.cdf(x))

            expected[name] = -richardson(cdf_at, value) / density
    for name, want in expected.items():
        (got,) = torch.autograd.grad(z, params[name], torch.ones_like(z), retain_graph=True)
        # Sum over samples equals the sum of per-sample derivatives; compare them one by one too.
        per_sample = torch.stack(
            [torch.autograd.grad(z[i], params[name], retain_graph=True)[0] for i in range(len(z))]
        ).numpy()
        message = f"{example.name}: d z / d {name}"
        np.testing.assert_allclose(per_sample, want, rtol=2e-6, atol=1e-10, err_msg=message)
        assert np.isclose(float(got), want.sum(), rtol=2e-6, atol=1e-10)


@pytest.mark.parametrize("example", UNBIASED, ids=[e.name for e in UNBIASED])
def test_pathwise_gradient_unbiased(example: Example) -> None:
    n = example.repeats
    params = tensors(example.params, n=n, grad=True)
    q = example.build(**params)
    value = rp.expect(lambda z: example.f(z), q, estimator=rp.Pathwise(), num_samples=1)
    assert value.shape == (n,)
    value.sum().backward()
    for name, theta in example.params.items():
        if not params[name].requires_grad:
            continue
        grads = params[name].grad.numpy()
        assert np.isfinite(grads).all(), f"{example.name}: non-finite gradient for {name}"
        moment = lambda t, name=name: np.asarray(example.moment(**{**example.params, name: t}))  # noqa: E731
        exact = float(richardson(moment, theta))
        se = grads.std(ddof=1) / math.sqrt(n)
        assert abs(grads.mean() - exact) < 5 * se + 1e-6 * (1 + abs(exact)), (
            f"{example.name}: d/d{name} mean {grads.mean():.6g} vs exact {exact:.6g} (se {se:.3g})"
        )


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_biject_to_support_is_finite_and_round_trips(example: Example) -> None:
    # What Pyro's autoguides do with a site: map samples to the unconstrained space and back.
    dist = example.build(**tensors(example.params))
    transform = torch.distributions.biject_to(dist.support)
    z = dist.sample((200,))
    x = transform.inv(z)
    assert bool(torch.isfinite(x).all()), example.name
    torch.testing.assert_close(transform(x), z, rtol=1e-6, atol=1e-300)
    y = transform(torch.randn_like(x))
    assert bool(torch.isfinite(y).all()) and bool(dist.support.check(y).all()), example.name
