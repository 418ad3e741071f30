"""The differentiated incomplete-beta continued fraction and the implicit Beta derivative against
30-digit mpmath, in every regime: both sides of the switch ``x = (a + 1)/(a + b + 2)``, the far
tails, concentrations 1e-3..1e3 and mixed scales."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import stats

from reparam.distributions._beta_grad import beta_logit_grad
from reparam.distributions._incomplete_beta import (
    beta_continued_fraction,
    float32_need,
    float32_terms,
    implicit_logit_grad,
    plan,
    plan_for,
    terms_for,
)

CONCENTRATIONS = (1e-3, 0.1, 1.0, 10.0, 1e3)
# quantiles: far tails, bulk, and the continued fraction's switching point (added per pair)
LEVELS = (1e-9, 0.05, 0.5, 0.95, 1 - 1e-9)


def _log_odds_at(a: float, b: float) -> list[float]:
    """``logit(x)`` at the quantiles ``LEVELS`` of Beta(a, b) and at the switching point; the
    upper quantiles come from Beta(b, a)'s lower ones so that ``1 - x`` keeps its digits."""
    out = []
    for u in LEVELS:
        lower = u < 0.5
        v = float(stats.beta(a, b).ppf(u) if lower else stats.beta(b, a).ppf(1 - u))
        if 0 < v < 1:  # quantiles beyond float64 (concentration 1e-3) are left out
            t = math.log(v) - math.log1p(-v)
            out.append(t if lower else -t)
    switch = (a + 1) / (a + b + 2)
    out.append(math.log(switch) - math.log1p(-switch))
    return [t for t in out if math.isfinite(t) and abs(t) < 700]


def _reference(t: float, a: float, b: float) -> tuple[float, float]:
    """``d logit(x)/da, d logit(x)/db`` at ``logit(x) = t``: ``-(dI_x/dtheta)/(p(x) x (1 - x))``
    with ``dI_x/dtheta`` by mpmath's high-precision numerical differentiation of ``betainc``
    (for ``x > 1/2`` of ``-I_{1-x}(b, a)``, so that the differences are not lost next to 1)."""
    with mpmath.workdps(30):
        t, a_, b_ = mpmath.mpf(t), mpmath.mpf(a), mpmath.mpf(b)
        x, y = 1 / (1 + mpmath.exp(-t)), 1 / (1 + mpmath.exp(t))
        density_xy = mpmath.exp(a_ * mpmath.log(x) + b_ * mpmath.log(y) - mpmath.log(mpmath.beta(a_, b_)))
        if x <= 0.5:
            cdf = lambda p, q: mpmath.betainc(p, q, 0, x, regularized=True)  # noqa: E731
        else:
            cdf = lambda p, q: -mpmath.betainc(q, p, 0, y, regularized=True)  # noqa: E731
        da = mpmath.diff(lambda s: cdf(s, b_), a_)
        db = mpmath.diff(lambda s: cdf(a_, s), b_)
        return float(-da / density_xy), float(-db / density_xy)


@pytest.mark.parametrize("a", CONCENTRATIONS)
def test_implicit_logit_derivative_matches_mpmath(a: float) -> None:
    # Term counts are set for ~1e-7 (measured worst 1.1e-8 relative over 1001 quantiles of every
    # pair of 16 concentrations 1e-3..1e4, vs 400 terms); 1e-7 here is three orders inside the
    # 1e-4 asked of the derivative.
    for b in CONCENTRATIONS:
        t = torch.tensor(_log_odds_at(a, b), dtype=torch.float64)
        log_x, log_y = torch.nn.functional.logsigmoid(t), torch.nn.functional.logsigmoid(-t)
        a_t, b_t = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
        got_a, got_b = beta_logit_grad(log_x, log_y, a_t, b_t)
        want = np.array([_reference(float(v), a, b) for v in t])
        for got, column, name in ((got_a, 0, "a"), (got_b, 1, "b")):
            message = f"d logit(x)/d{name} at ({a}, {b})"
            np.testing.assert_allclose(got.numpy(), want[:, column], rtol=1e-7, atol=0, err_msg=message)


def test_per_element_concentrations_match_shared_ones() -> None:
    # The per-element path (coefficients evaluated per sample) equals the shared-parameter one.
    a = torch.tensor([0.3, 4.0, 200.0], dtype=torch.float64)
    b = torch.tensor([2.0, 0.01, 150.0], dtype=torch.float64)
    x = torch.distributions.Beta(a, b).sample((50,)).double().clamp(1e-300, 1 - 1e-16)
    log_x, log_y = torch.log(x), torch.log1p(-x)
    per_element = beta_logit_grad(log_x, log_y, a.expand(50, 3), b.expand(50, 3))
    for i in range(3):
        shared = beta_logit_grad(log_x[:, i], log_y[:, i], a[i], b[i])
        for got, want in zip(per_element, shared, strict=True):
            # the term count follows the largest concentration: more terms, same value to ~1e-13
            torch.testing.assert_close(got[:, i], want, rtol=1e-11, atol=0)


def _fraction(p: mpmath.mpf, q: mpmath.mpf, z: mpmath.mpf) -> mpmath.mpf:
    """``F = I_z(p, q) p B(p, q) / (z^p (1 - z)^q)`` in mpmath."""
    return mpmath.betainc(p, q, 0, z, regularized=True) * p * mpmath.beta(p, q) / (z**p * (1 - z) ** q)


def test_continued_fraction_gives_the_incomplete_beta_function() -> None:
    # I_z(p, q) = z^p (1 - z)^q F / (p B(p, q)); F and its partials against mpmath to 1e-8
    # (the term count aims at ~1e-7 in the implicit derivative; F itself converges faster).
    cases = [(2.0, 3.0, 0.2), (0.5, 0.5, 0.3), (0.01, 50.0, 0.015), (800.0, 900.0, 0.47)]
    for p, q, z in cases:
        pt, qt = torch.tensor(p, dtype=torch.float64), torch.tensor(q, dtype=torch.float64)
        got = beta_continued_fraction(pt, qt, torch.tensor([z], dtype=torch.float64), terms_for(pt, qt))

        with mpmath.workdps(30):
            pm, qm, zm = mpmath.mpf(p), mpmath.mpf(q), mpmath.mpf(z)
            want = [
                _fraction(pm, qm, zm),
                mpmath.diff(lambda s, qm=qm, zm=zm: _fraction(s, qm, zm), pm),
                mpmath.diff(lambda s, pm=pm, zm=zm: _fraction(pm, s, zm), qm),
            ]
        for g, w in zip(got, want, strict=True):
            assert abs(float(g) - float(w)) <= 1e-8 * abs(float(w)) + 1e-300, (p, q, z, float(g), float(w))


def test_term_count_is_even_and_grows_with_concentration() -> None:
    one = torch.tensor(1.0, dtype=torch.float64)
    counts = [terms_for(one * c, one * c) for c in (1e-3, 1.0, 10.0, 1e3, 1e4)]
    assert all(n % 4 == 0 for n in counts) and counts == sorted(counts)
    assert terms_for(one * 0.1, one * 30.0) >= 32  # measured need of the skewed case (1e-7)
    assert terms_for(torch.ones(0), torch.ones(0)) == 0


@pytest.mark.parametrize("a", (0.1, 1.0, 30.0, 300.0))
def test_float32_evaluation_stays_within_its_bound_of_float64(a: float) -> None:
    # A float32 caller gets float32 arithmetic (and float32_terms) for a in [0.1, 300], b in
    # [0.1, 30]: measured worst 4e-5 relative at (0.1, 30) over quantiles 1e-9..1 - 1e-9 of 88
    # pairs of that region (float32 rounding; the shorter fraction adds below 2e-6). Held to
    # 5e-5 here, half the 1e-4 asked of the derivative.
    u = np.concatenate([np.logspace(-9, -1, 40), np.linspace(0.1, 0.9, 81), 1 - np.logspace(-9, -1, 40)])
    for b in (0.1, 0.5, 3.0, 30.0):
        x = torch.tensor(stats.beta(a, b).ppf(u)).float()
        x = x[(x > torch.finfo(torch.float32).tiny) & (x < 1)]  # as a float32 sample can be
        t = torch.log(x) - torch.log1p(-x)
        log_x, log_y = torch.nn.functional.logsigmoid(t), torch.nn.functional.logsigmoid(-t)
        a_t, b_t = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
        assert plan(a_t, b_t)[1] is True
        low = beta_logit_grad(log_x, log_y, a_t, b_t, float32_allowed=True)
        high = beta_logit_grad(log_x.double(), log_y.double(), a_t, b_t)
        for got, want in zip(low, high, strict=True):
            assert got.dtype == torch.float32
            torch.testing.assert_close(got.double(), want, rtol=5e-5, atol=0)
    assert plan(torch.tensor(0.05), torch.tensor(3.0))[1] is False  # outside: float64
    assert plan(torch.tensor(2.0), torch.tensor(31.0))[1] is False
    assert plan(torch.tensor(301.0), torch.tensor(2.0))[1] is False
    assert plan(torch.full((100,), 2.0), torch.full((100,), 31.0))[1] is False  # the tensor branch


def test_float32_terms_is_even_and_three_quarters() -> None:
    assert [float32_terms(n) for n in (16, 24, 40, 240)] == [12, 18, 30, 180]


def test_plan_reads_numbers_and_tensors_alike() -> None:
    # the Python branch (few concentrations) and the tensor branch (many) give the same plan
    a = torch.tensor([0.05, 0.5, 2.0, 50.0, 400.0, 1e4], dtype=torch.float64)
    b = torch.tensor([3.0, 30.0, 2.0, 0.2, 5.0, 1.0], dtype=torch.float64)
    for i in range(len(a)):
        for j in range(len(b)):
            few = plan(a[i], b[j])
            many = plan(a[i].expand(100), b[j].expand(100))
            assert few == many, (float(a[i]), float(b[j]), few, many)


def test_float32_term_counts_bound_the_truncation_error() -> None:
    # float32_need's counts (looked up per pair, plan_for) against a 400-term evaluation, both in
    # float64 so only truncation shows: within 5e-6 relative (the table aims at 2e-6 at the grid
    # points; inside a cell the largest corner need plus two terms) at 12 random pairs of the
    # float32 region and at quantiles 1e-9..1 - 1e-9 plus the switching point. Deterministic
    # given the pairs; the pairs come from the seeded generator.
    u = np.concatenate([np.logspace(-9, -1, 30), np.linspace(0.1, 0.9, 81), 1 - np.logspace(-9, -1, 30)])
    gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
    a_values = 10 ** (torch.rand(12, generator=gen, dtype=torch.float64) * math.log10(3000.0) - 1)
    b_values = 10 ** (torch.rand(12, generator=gen, dtype=torch.float64) * math.log10(300.0) - 1)
    for a_t, b_t in zip(a_values, b_values, strict=True):
        a, b = float(a_t), float(b_t)
        terms, float32 = plan_for(a_t.float(), b_t.float(), True)
        assert float32 and terms == float32_need(a, b)
        x = np.append(stats.beta(a, b).ppf(u), (a + 1) / (a + b + 2))
        x = torch.tensor(x[(x > 1e-300) & (x < 1)], dtype=torch.float64)
        args = (x, 1 - x, torch.log(x), torch.log1p(-x), a_t, b_t)
        for got, want in zip(implicit_logit_grad(*args, terms), implicit_logit_grad(*args, 400), strict=True):
            torch.testing.assert_close(got, want, rtol=5e-6, atol=0, msg=f"({a}, {b}), {terms} terms")


@pytest.mark.parametrize("shape", [(30000,), (6000, 5)])
def test_passes_over_chunks_equal_one_pass(shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    # Large calls run in passes of ~2^18 stored values reusing one buffer; the result equals a
    # single pass over everything (the same operations per element: equal to rounding).
    import reparam.distributions._incomplete_beta as ib

    a = torch.linspace(0.5, 8.0, shape[-1], dtype=torch.float64) if len(shape) > 1 else torch.tensor(2.0)
    a = a.double()
    b = torch.full_like(a, 3.0)
    x = torch.distributions.Beta(a, b).sample(shape[:1]).double().clamp(1e-300, 1 - 1e-16)
    args = (x, 1 - x, torch.log(x), torch.log1p(-x), a, b, 24)
    passes = ib.implicit_logit_grad(*args)
    monkeypatch.setattr(ib, "_chunk", lambda terms: 1 << 40)
    single = ib.implicit_logit_grad(*args)
    for got, want in zip(passes, single, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
