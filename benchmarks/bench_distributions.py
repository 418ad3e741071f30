"""Pathwise gradients of reparam.distributions: accuracy against float64 references and speed
against torch's native rsample, side by side.

Accuracy: max and median relative error of the per-sample derivative dz/dtheta over samples
drawn at each point of a parameter grid, against an independent float64 (or better) reference:

* Gamma (and Chi2, InverseGamma, and the gammas inside Beta, Dirichlet, StudentT):
  ``dx/dalpha = -(dP/dalpha)/p`` with ``dP/dalpha`` by Richardson-extrapolated central
  differences of scipy's regularised incomplete gamma ``P`` (or ``Q`` above the median).
  torch's ``_standard_gamma_grad`` is measured on the same samples (float64 in both, so only the
  approximation error shows).
* VonMises: ``-(dF/dkappa)/p`` with ``dF/dkappa = int_0^x p(t)(cos t - I1/I0) dt`` by scipy quad.
* TruncatedNormal: ``-(dF/dtheta)/p`` for all four parameters in 50-digit mpmath.
* Mixture (univariate, 3 normals): ``-(dF/dtheta)/p`` by Richardson differences of the mixture CDF.

Speed: CPU nanoseconds per sample of ``rsample`` + ``backward`` (float32, one thread,
``--n`` samples, thread CPU time), median over ``--rounds`` paired rounds (order alternating),
the median of per-round ratios ours / torch, and the ratio of the fastest rounds (interference
only adds time). Shared parameters (the usual ``q.rsample((n,))``) and, for Gamma, one
concentration per sample. Where torch has no ``rsample`` (VonMises, mixtures, truncated normal),
the baseline is its ``sample()`` or a hand-written torch inversion with autograd. A second table
shows the ratio against the number of samples per call (a fixed per-call cost of the tensor
operations), a last one forward-only ``sample()`` against torch's (the derivatives are deferred
to backward).

Run: python benchmarks/bench_distributions.py [--n 50000] [--rounds 15] [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import mpmath
import numpy as np
import torch
from scipy import integrate, special
from torch.distributions import Categorical, Normal

import reparam as rp
from reparam.distributions._gamma_grad import standard_gamma_log_grad

D = rp.distributions
Row = tuple[str, str, float, float, float, float]


# ------------------------------------------------------------------ accuracy references
def gamma_reference(x: np.ndarray, alpha: float) -> np.ndarray:
    upper = special.gammainc(alpha, x) > 0.5
    h = 1e-4 * min(alpha, math.sqrt(alpha))

    def p(a: float) -> np.ndarray:
        return np.where(upper, -special.gammaincc(a, x), special.gammainc(a, x))

    d = (4 * (p(alpha + h / 2) - p(alpha - h / 2)) / h - (p(alpha + h) - p(alpha - h)) / (2 * h)) / 3
    return -d / np.exp((alpha - 1) * np.log(x) - x - special.gammaln(alpha))


def rel_err(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    err = np.abs(got - want) / np.maximum(np.abs(want), 1e-300)
    return float(np.max(err)), float(np.median(err))


def gamma_accuracy(alphas: list[float], n: int) -> list[Row]:
    rows = []
    for alpha in alphas:
        a = torch.full((n,), alpha, dtype=torch.float64)
        x = D.Gamma(a, 1.0).sample()
        keep = x > 1e-300  # below, x is the clamp value and dz/dalpha underflows for both
        x, a = x[keep], a[keep]
        want = gamma_reference(x.numpy(), alpha)
        ours = (x * standard_gamma_log_grad(torch.log(x), a)).numpy()
        theirs = torch._standard_gamma_grad(a, x).numpy()
        rows.append(("Gamma", f"alpha={alpha:g}", *rel_err(ours, want), *rel_err(theirs, want)))
    return rows


def _von_mises_reference(x: float, kappa: float) -> float:
    ratio = special.i1e(kappa) / special.i0e(kappa)

    def pdf(t: float) -> float:
        return np.exp(kappa * (np.cos(t) - 1)) / (2 * np.pi * special.i0e(kappa))

    kw = {"epsabs": 0.0, "epsrel": 1e-12, "limit": 200}
    return -integrate.quad(lambda t: pdf(t) * (np.cos(t) - ratio), 0, x, **kw)[0] / pdf(x)


def von_mises_accuracy(kappas: list[float], n: int) -> list[Row]:
    rows = []
    for kappa in kappas:
        c = torch.tensor(kappa, dtype=torch.float64, requires_grad=True)
        z = D.VonMises(torch.tensor(0.0, dtype=torch.float64), c).rsample((n,))
        ours = np.array([torch.autograd.grad(zi, c, retain_graph=True)[0].item() for zi in z])
        want = np.array([_von_mises_reference(float(v), kappa) for v in z.detach()])
        rows.append(("VonMises", f"kappa={kappa:g}", *rel_err(ours, want), math.nan, math.nan))
    return rows


def _mp_truncnorm_cdf(
    v: mpmath.mpf, loc: mpmath.mpf, scale: mpmath.mpf, lo: mpmath.mpf, hi: mpmath.mpf
) -> mpmath.mpf:
    """Truncated-normal CDF at 50 digits, in the mirrored form when the interval is above 0 (so no
    1 - tiny cancellation)."""
    xi, a, b = (v - loc) / scale, (lo - loc) / scale, (hi - loc) / scale
    if a > 0:
        top = mpmath.ncdf(-a)
        bottom = mpmath.ncdf(-b) if mpmath.isfinite(b) else 0
        return (top - mpmath.ncdf(-xi)) / (top - bottom)
    left = mpmath.ncdf(a) if mpmath.isfinite(a) else 0
    right = mpmath.ncdf(b) if mpmath.isfinite(b) else 1
    return (mpmath.ncdf(xi) - left) / (right - left)


def _mp_truncnorm_grads(z: float, low: float, high: float, names: list[str]) -> dict[str, float]:
    key = {"loc": "loc", "scale": "scale", "low": "lo", "high": "hi"}
    with mpmath.workdps(50):
        point = {"loc": mpmath.mpf(0), "scale": mpmath.mpf(1), "lo": mpmath.mpf(low), "hi": mpmath.mpf(high)}
        v = mpmath.mpf(z)
        dens = mpmath.diff(lambda t: _mp_truncnorm_cdf(t, **point), v)
        out = {}
        for k in names:
            d = mpmath.diff(lambda t, k=k: _mp_truncnorm_cdf(v, **{**point, key[k]: t}), point[key[k]])
            out[k] = float(-d / dens)
    return out


def truncnorm_accuracy(intervals: list[tuple[float, float]], n: int) -> list[Row]:
    rows = []
    for low, high in intervals:
        values = {"loc": 0.0, "scale": 1.0, "low": low, "high": high}
        params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in values.items()}
        z = D.TruncatedNormal(**params).rsample((n,))
        names = [k for k, v in values.items() if math.isfinite(v)]
        got = {
            k: np.array([torch.autograd.grad(zi, params[k], retain_graph=True)[0].item() for zi in z])
            for k in names
        }
        refs = [_mp_truncnorm_grads(float(zi), low, high, names) for zi in z.detach()]
        errs = [rel_err(got[k], np.array([r[k] for r in refs])) for k in names]
        label = f"[{low:g}, {high:g}]"
        rows.append(
            ("TruncatedNormal", label, max(e[0] for e in errs), max(e[1] for e in errs), math.nan, math.nan)
        )
    return rows


def mixture_accuracy(n: int) -> list[Row]:
    locs = torch.tensor([-2.0, 0.5, 3.0], dtype=torch.float64, requires_grad=True)
    scales = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64)
    logits = torch.tensor([0.3, -0.2, 0.0], dtype=torch.float64)
    z = D.MixtureSameFamily(Categorical(logits=logits), Normal(locs, scales)).rsample((n,))
    got = np.stack([torch.autograd.grad(zi, locs, retain_graph=True)[0].numpy() for zi in z])
    x = z.detach().numpy()[:, None]
    w = special.softmax(logits.numpy())
    pdf = (
        w
        * np.exp(-0.5 * ((x - locs.detach().numpy()) / scales.numpy()) ** 2)
        / (scales.numpy() * math.sqrt(2 * math.pi))
    ).sum(-1)
    # dF/dmu_k = -w_k phi((z - mu_k)/s_k)/s_k exactly; the reference is the closed form here.
    comp = (
        w
        * np.exp(-0.5 * ((x - locs.detach().numpy()) / scales.numpy()) ** 2)
        / (scales.numpy() * math.sqrt(2 * math.pi))
    )
    want = comp / pdf[:, None]
    return [("Mixture (3 normals)", "d z / d loc_k", *rel_err(got, want), math.nan, math.nan)]


def _mp_beta_logit_grad(x: float, a: float, b: float) -> float:
    """``dx/da`` for ``x ~ Beta(a, b)`` (``b`` fixed): ``-(dI_x/da)/p(x)`` with mpmath's betainc at
    30 digits (``-I_{1-x}(b, a)`` above 1/2, so nothing cancels next to 1)."""
    with mpmath.workdps(30):
        xm, am, bm = mpmath.mpf(x), mpmath.mpf(a), mpmath.mpf(b)
        ym = 1 - xm
        if xm <= 0.5:
            cdf = lambda s: mpmath.betainc(s, bm, 0, xm, regularized=True)  # noqa: E731
        else:
            cdf = lambda s: -mpmath.betainc(bm, s, 0, ym, regularized=True)  # noqa: E731
        log_density = (am - 1) * mpmath.log(xm) + (bm - 1) * mpmath.log(ym) - mpmath.log(mpmath.beta(am, bm))
        density = mpmath.exp(log_density)
        return float(-mpmath.diff(cdf, am) / density)


def beta_accuracy(cases: list[tuple[float, float]], n: int) -> list[Row]:
    """Float32 rsample of Beta(a, b), per-sample ``dx/da`` (the float32 host path where the
    concentrations allow it, else float64) against 30-digit mpmath at the returned samples;
    torch's Beta on its own float32 samples against the same reference."""
    rows = []
    for a, b in cases:
        errs = []
        for cls in (D.Beta, torch.distributions.Beta):
            conc = torch.full((n,), a, requires_grad=True)
            x = cls(conc, torch.full((n,), b)).rsample()
            (got,) = torch.autograd.grad(x.sum(), conc)
            keep = (x > 1e-30) & (x < 1 - 1e-6)  # the reference's density must be representable
            want = np.array([_mp_beta_logit_grad(float(v), a, b) for v in x.detach()[keep].double()])
            errs.append(rel_err(got[keep].double().numpy(), want))
        rows.append(("Beta (float32)", f"a={a:g}, b={b:g}", *errs[0], *errs[1]))
    return rows


def dirichlet_accuracy(concentrations: list[tuple[float, ...]], n: int) -> list[Row]:
    """Float32 Dirichlet rsample: ``dx_0/dalpha_0`` per sample (the marginal
    ``Beta(alpha_0, sum - alpha_0)``'s implicit derivative) against mpmath; torch's likewise."""
    rows = []
    for alpha in concentrations:
        errs = []
        for cls in (D.Dirichlet, torch.distributions.Dirichlet):
            conc = torch.tensor(alpha).repeat(n, 1).requires_grad_(True)
            x = cls(conc).rsample()[:, 0]
            (got,) = torch.autograd.grad(x.sum(), conc)
            keep = (x > 1e-30) & (x < 1 - 1e-6)
            rest = sum(alpha) - alpha[0]
            points = x.detach()[keep].double()
            want = np.array([_mp_beta_logit_grad(float(v), alpha[0], rest) for v in points])
            errs.append(rel_err(got[keep, 0].double().numpy(), want))
        label = "alpha=(" + ", ".join(f"{v:g}" for v in alpha) + ")"
        rows.append(("Dirichlet (float32)", label, *errs[0], *errs[1]))
    return rows


# ------------------------------------------------------------------ speed
def timed(fn: Callable[[], None]) -> float:
    """CPU time of the calling thread (torch runs single-threaded here), so other processes on a
    shared machine inflate neither side of a ratio."""
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def paired(
    ours: Callable[[], None], base: Callable[[], None], rounds: int, n: int
) -> tuple[float, float, float, float]:
    """Medians of ``rounds`` alternating timings (ns per sample), the median of the per-round
    ratios, and the ratio of the fastest rounds (interference from other processes only adds
    time, so the minima show the intrinsic costs; the medians what a user sees here)."""
    ours(), base()  # warm-up
    t_ours, t_base, ratios = [], [], []
    for r in range(rounds):
        if r % 2:
            b, o = timed(base), timed(ours)
        else:
            o, b = timed(ours), timed(base)
        t_ours.append(o)
        t_base.append(b)
        ratios.append(o / b)
    medians = statistics.median(t_ours) / n * 1e9, statistics.median(t_base) / n * 1e9
    return *medians, statistics.median(ratios), min(t_ours) / min(t_base)


def grad_step(
    make: Callable[[torch.Tensor], torch.distributions.Distribution],
    theta: torch.Tensor,
    n: int,
    method: str = "rsample",
) -> Callable[[], None]:
    def step() -> None:
        p = theta.clone().requires_grad_()
        dist = make(p)
        z = getattr(dist, method)((n,))
        if z.requires_grad:
            z.sum().backward()

    return step


def hand_truncnorm(n: int, low: float, high: float) -> Callable[[], None]:
    def step() -> None:
        loc = torch.tensor(0.0, requires_grad=True)
        scale = torch.tensor(1.0, requires_grad=True)
        std = Normal(0.0, 1.0)
        a, b = std.cdf((low - loc) / scale), std.cdf((high - loc) / scale)
        z = loc + scale * std.icdf(a + torch.rand(n) * (b - a))
        z.sum().backward()

    return step


def speed_rows(n: int, rounds: int) -> list[tuple[str, float, float, float, float, str]]:
    t = torch.tensor
    cases = [
        (
            "Gamma(0.5)",
            grad_step(lambda a: D.Gamma(a, 1.0), t(0.5), n),
            grad_step(lambda a: torch.distributions.Gamma(a, 1.0), t(0.5), n),
            "torch Gamma.rsample",
        ),
        (
            "Gamma(3)",
            grad_step(lambda a: D.Gamma(a, 1.0), t(3.0), n),
            grad_step(lambda a: torch.distributions.Gamma(a, 1.0), t(3.0), n),
            "torch Gamma.rsample",
        ),
        (
            "Gamma(100)",
            grad_step(lambda a: D.Gamma(a, 1.0), t(100.0), n),
            grad_step(lambda a: torch.distributions.Gamma(a, 1.0), t(100.0), n),
            "torch Gamma.rsample",
        ),
        (
            "Gamma, alpha per element ~ U(0.5, 5.5)",
            grad_step(lambda a: D.Gamma(a, 1.0), torch.rand(n) * 5.0 + 0.5, 1),
            grad_step(lambda a: torch.distributions.Gamma(a, 1.0), torch.rand(n) * 5.0 + 0.5, 1),
            "torch Gamma.rsample",
        ),
        (
            "Gamma, alpha per element ~ U(10, 110)",
            grad_step(lambda a: D.Gamma(a, 1.0), torch.rand(n) * 100.0 + 10.0, 1),
            grad_step(lambda a: torch.distributions.Gamma(a, 1.0), torch.rand(n) * 100.0 + 10.0, 1),
            "torch Gamma.rsample",
        ),
        (
            "Chi2(4)",
            grad_step(lambda a: D.Chi2(a), t(4.0), n),
            grad_step(lambda a: torch.distributions.Chi2(a), t(4.0), n),
            "torch Chi2.rsample",
        ),
        (
            "InverseGamma(3, 2)",
            grad_step(lambda a: D.InverseGamma(a, 2.0), t(3.0), n),
            grad_step(lambda a: torch.distributions.InverseGamma(a, 2.0), t(3.0), n),
            "torch InverseGamma.rsample",
        ),
        (
            "Beta(2, 3)",
            grad_step(lambda a: D.Beta(a, 3.0), t(2.0), n),
            grad_step(lambda a: torch.distributions.Beta(a, 3.0), t(2.0), n),
            "torch Beta.rsample",
        ),
        (
            "Dirichlet(K=5, all 1.5)",
            grad_step(lambda a: D.Dirichlet(a), torch.full((5,), 1.5), n // 5),
            grad_step(lambda a: torch.distributions.Dirichlet(a), torch.full((5,), 1.5), n // 5),
            "torch Dirichlet.rsample",
        ),
        (
            "Dirichlet(0.5, 1, 2, 4, 8)",
            grad_step(lambda a: D.Dirichlet(a), torch.tensor([0.5, 1.0, 2.0, 4.0, 8.0]), n // 5),
            grad_step(
                lambda a: torch.distributions.Dirichlet(a), torch.tensor([0.5, 1.0, 2.0, 4.0, 8.0]), n // 5
            ),
            "torch Dirichlet.rsample",
        ),
        (
            "StudentT(4)",
            grad_step(lambda a: D.StudentT(a), t(4.0), n),
            grad_step(lambda a: torch.distributions.StudentT(a), t(4.0), n),
            "torch StudentT.rsample",
        ),
        (
            "Implicit(Normal)",
            grad_step(lambda m: D.Implicit(Normal(m, 1.0)), t(0.0), n),
            grad_step(lambda m: Normal(m, 1.0), t(0.0), n),
            "torch Normal.rsample",
        ),
        (
            "InverseCDF(Normal)",
            grad_step(lambda m: D.InverseCDF(Normal(m, 1.0)), t(0.0), n),
            grad_step(lambda m: Normal(m, 1.0), t(0.0), n),
            "torch Normal.rsample",
        ),
        (
            "VonMises(0, 2)",
            grad_step(lambda k: D.VonMises(t(0.0), k), t(2.0), n),
            grad_step(lambda k: torch.distributions.VonMises(t(0.0), k), t(2.0), n, "sample"),
            "torch VonMises.sample",
        ),
        (
            "TruncatedNormal[-1, 2]",
            grad_step(lambda m: D.TruncatedNormal(m, 1.0, -1.0, 2.0), t(0.0), n),
            hand_truncnorm(n, -1.0, 2.0),
            "hand-written torch inversion",
        ),
        (
            "Mixture (3 normals)",
            grad_step(
                lambda m: D.MixtureSameFamily(Categorical(logits=torch.zeros(3)), Normal(m, 1.0)),
                torch.zeros(3),
                n,
            ),
            grad_step(
                lambda m: torch.distributions.MixtureSameFamily(
                    Categorical(logits=torch.zeros(3)), Normal(m, 1.0)
                ),
                torch.zeros(3),
                n,
                "sample",
            ),
            "torch MixtureSameFamily.sample",
        ),
    ]
    rows = []
    for name, ours, base, label in cases:
        rows.append((name, *paired(ours, base, rounds, n), label))
    return rows


def size_rows(rounds: int) -> list[tuple[str, list[float]]]:
    """Ratio ours / torch of ``rsample`` + ``backward`` against the number of samples: each call
    pays a fixed cost for its ~60-100 tensor operations (a few microseconds each), which torch's
    fused kernels do not have, so the ratio falls with the size of the call."""
    t = torch.tensor
    rows = []
    for name, ours, theirs in [
        ("Gamma(3)", lambda a: D.Gamma(a, 1.0), lambda a: torch.distributions.Gamma(a, 1.0)),
        ("Gamma(100)", lambda a: D.Gamma(a, 1.0), lambda a: torch.distributions.Gamma(a, 1.0)),
        ("Beta(2, 3)", lambda a: D.Beta(a, 3.0), lambda a: torch.distributions.Beta(a, 3.0)),
        ("Beta(0.5, 3)", lambda a: D.Beta(a, 3.0), lambda a: torch.distributions.Beta(a, 3.0)),
        ("Beta(50, 3)", lambda a: D.Beta(a, 3.0), lambda a: torch.distributions.Beta(a, 3.0)),
        ("Dirichlet(K=5, all 1.5)", D.Dirichlet, torch.distributions.Dirichlet),
        ("Dirichlet(0.5, 1, 2, 4, 8)", D.Dirichlet, torch.distributions.Dirichlet),
    ]:
        theta = {
            "Gamma(3)": t(3.0),
            "Gamma(100)": t(100.0),
            "Beta(2, 3)": t(2.0),
            "Beta(0.5, 3)": t(0.5),
            "Beta(50, 3)": t(50.0),
            "Dirichlet(K=5, all 1.5)": torch.full((5,), 1.5),
            "Dirichlet(0.5, 1, 2, 4, 8)": t([0.5, 1.0, 2.0, 4.0, 8.0]),
        }[name]
        k = theta.numel()  # samples per call: m draws of a K-vector count as m (not K m)
        ratios = [
            paired(grad_step(ours, theta, m // k), grad_step(theirs, theta, m // k), rounds, m)[2]
            for m in SIZES
        ]
        rows.append((name, ratios))
    return rows


SIZES = (100, 1_000, 10_000, 100_000)


def sample_rows(n: int, rounds: int) -> list[tuple[str, float, float, float, float, str]]:
    """Forward-only ``sample()``: the accurate derivatives are computed in backward only, so
    this costs what the sampler costs (Beta and StudentT draw their gammas in float64 log space,
    which keeps concentrations down to 1e-4 finite)."""
    t = torch.tensor
    cases = [
        ("Gamma(3)", lambda: D.Gamma(t(3.0), 1.0), lambda: torch.distributions.Gamma(t(3.0), 1.0)),
        ("Gamma(100)", lambda: D.Gamma(t(100.0), 1.0), lambda: torch.distributions.Gamma(t(100.0), 1.0)),
        ("Beta(2, 3)", lambda: D.Beta(t(2.0), 3.0), lambda: torch.distributions.Beta(t(2.0), 3.0)),
        ("StudentT(4)", lambda: D.StudentT(t(4.0)), lambda: torch.distributions.StudentT(t(4.0))),
        (
            "VonMises(0, 2)",
            lambda: D.VonMises(t(0.0), t(2.0)),
            lambda: torch.distributions.VonMises(t(0.0), t(2.0)),
        ),
    ]
    rows = []
    for name, ours, base in cases:
        q, b = ours(), base()
        timing = paired(lambda q=q: q.sample((n,)), lambda b=b: b.sample((n,)), rounds, n)
        rows.append((name, *timing, "sample()"))
    return rows


# ------------------------------------------------------------------ main
def fmt(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:.1e}"


def print_size_table(rounds: int) -> None:
    print(f"## Ratio against the number of samples per call (median of {rounds} paired rounds)\n")
    print("| distribution | " + " | ".join(f"n = {m}" for m in SIZES) + " |")
    print("|---|" + "---|" * len(SIZES))
    for name, ratios in size_rows(rounds):
        print(f"| {name} | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="samples per timed call")
    parser.add_argument("--rounds", type=int, default=7, help="paired timing rounds")
    parser.add_argument("--quick", action="store_true", help="smaller accuracy grid and sample counts")
    parser.add_argument(
        "--sizes-only", action="store_true", help="only the table of ratios by samples per call"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if args.sizes_only:
        print_size_table(args.rounds)
        return
    m = 300 if args.quick else 2000
    alphas = [1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0, 2.0, 5.0, 9.0, 20.0, 50.0, 200.0, 1e3, 1e4]
    kappas = [1e-3, 0.1, 1.0, 10.0, 49.0, 51.0, 300.0, 1e4]
    rows = gamma_accuracy(alphas, m)
    rows += von_mises_accuracy(kappas, 40 if args.quick else 150)
    rows += truncnorm_accuracy(
        [(-1.0, 2.0), (8.0, math.inf), (30.0, 30.5), (-math.inf, -40.0)], 10 if args.quick else 30
    )
    rows += mixture_accuracy(100)
    beta_cases = [(2.0, 3.0), (0.5, 3.0), (50.0, 3.0), (0.05, 2.0), (3.0, 100.0)]
    rows += beta_accuracy(beta_cases, 30 if args.quick else 100)
    rows += dirichlet_accuracy([(1.5,) * 5, (0.5, 1.0, 2.0, 4.0, 8.0)], 30 if args.quick else 100)
    print("## Accuracy of dz/dtheta (relative error vs float64 reference)\n")
    print("| distribution | parameters | ours max | ours median | torch max | torch median |")
    print("|---|---|---|---|---|---|")
    for name, par, om, omed, tm, tmed in rows:
        print(f"| {name} | {par} | {fmt(om)} | {fmt(omed)} | {fmt(tm)} | {fmt(tmed)} |")
    gamma = [r for r in rows if r[0] == "Gamma"]
    ours_max, torch_max = max(r[2] for r in gamma), max(r[4] for r in gamma)
    print(
        f"\nGamma over the grid: ours max {ours_max:.1e}, torch max {torch_max:.1e} (target: ours <= 1e-4)\n"
    )
    setting = f"float32, one thread, n={args.n}, median of {args.rounds} paired rounds"
    print(f"## Speed: rsample + backward, {setting}\n")
    print("| distribution | ours ns/sample | baseline ns/sample | ratio | ratio of minima | baseline |")
    print("|---|---|---|---|---|---|")
    for name, ours, base, ratio, fastest, label in speed_rows(args.n, args.rounds):
        print(f"| {name} | {ours:.0f} | {base:.0f} | {ratio:.2f}x | {fastest:.2f}x | {label} |")
    print(
        "\nTargets: <= 1.2x of torch's native rsample for the dedicated classes that have one (Gamma,"
        " Chi2, InverseGamma, Beta, Dirichlet, StudentT), <= 3x for the generic Implicit; VonMises,"
        " TruncatedNormal and mixtures have no native rsample (their baselines are for scale).\n"
    )
    print_size_table(args.rounds)
    print(f"## Forward only: sample(), {setting}\n")
    print("| distribution | ours ns/sample | torch ns/sample | ratio | ratio of minima |")
    print("|---|---|---|---|---|")
    for name, ours, base, ratio, fastest, _ in sample_rows(args.n, args.rounds):
        print(f"| {name} | {ours:.0f} | {base:.0f} | {ratio:.2f}x | {fastest:.2f}x |")


if __name__ == "__main__":
    main()
