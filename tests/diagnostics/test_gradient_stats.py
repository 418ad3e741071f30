"""gradient_stats against closed-form variances, batched against loop, fallbacks and errors.

Tolerances for a sample variance: with R independent estimates of variance sigma^2 and fourth
central moment mu4, Var(s^2) = (mu4 - sigma^4) / R + O(1/R^2), so we accept
|s^2 - sigma^2| < 5 sqrt((mu4 - sigma^4) / R); means are accepted within 5 standard errors.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from numpy.polynomial import polynomial as P
from torch.distributions import Independent, Normal

import reparam as rp
from reparam.baselines import MovingAverage
from reparam.estimators.registry import make_estimator
from reparam.problems import get_problem


def normal_moment(k: int) -> float:
    """E[eps^k] for eps ~ N(0, 1): 0 for odd k, (k - 1)!! for even k."""
    return 0.0 if k % 2 else float(math.prod(range(k - 1, 0, -2)))


def poly_moments(coeffs: list[float]) -> tuple[float, float, float]:
    """(mean, variance, fourth central moment) of p(eps), p given by increasing coefficients."""
    expect = lambda c: sum(a * normal_moment(k) for k, a in enumerate(c))  # noqa: E731
    mean = expect(coeffs)
    centred = P.polysub(coeffs, [mean])
    return mean, expect(P.polypow(centred, 2)), expect(P.polypow(centred, 4))


def variance_tolerance(variance: float, mu4: float, repeats: int) -> float:
    return 5.0 * math.sqrt((mu4 - variance**2) / repeats)


def mu_variance(estimator_name: str, problem: str, repeats: int, **options: float) -> tuple[float, int]:
    p = get_problem(problem, **options)
    stats = rp.gradient_stats(
        p.f, p.q, p.params, make_estimator(estimator_name), repeats=repeats, exact=p.exact
    )
    assert stats.method == "batched"
    return float(stats.variance[0]), stats.repeats


# ---------------------------------------------------------------- x ~ N(1, 1), f = x^2, d/dmu
# With x = 1 + eps:
# * pathwise: g = 2x = 2 + 2 eps                 -> Var 4, mu4 = 16 * 3 = 48
# * score function: g = x^2 (x - 1) = eps + 2 eps^2 + eps^3 -> E g = 2,
#   Var = E[(eps + 2 eps^2 + eps^3)^2] - 4 = (1 + 12 + 15 + 6) - 4 = 30
# * measure-valued: g = c (f(1 + W) - f(1 - W)) = 4 W / sqrt(2 pi), W ~ Rayleigh(1), Var W =
#   2 - pi/2, so Var g = 16 (2 - pi/2) / (2 pi) = 1.0928...
# mu4 for the polynomials comes from the normal moments; for W from E W^k = 2^(k/2) Gamma(1 + k/2).


def test_quadratic_pathwise_variance_is_4() -> None:
    mean, var, mu4 = poly_moments([2.0, 2.0])
    assert (mean, var) == (2.0, 4.0)
    repeats = 50000
    tol = variance_tolerance(var, mu4, repeats)
    assert tol / var < 0.05  # "within a few percent"
    got, _ = mu_variance("pathwise", "normal-quadratic", repeats)
    assert abs(got - var) < tol, (got, var, tol)


def test_quadratic_score_function_variance_is_30() -> None:
    mean, var, mu4 = poly_moments([0.0, 1.0, 2.0, 1.0])
    assert math.isclose(mean, 2.0) and math.isclose(var, 30.0)
    repeats = 400000
    tol = variance_tolerance(var, mu4, repeats)
    assert tol / var < 0.06
    got, _ = mu_variance("reinforce", "normal-quadratic", repeats)
    assert abs(got - var) < tol, (got, var, tol)


def test_quadratic_measure_valued_variance_is_1_093() -> None:
    raw = [2 ** (k / 2) * math.gamma(1 + k / 2) for k in range(5)]  # Rayleigh(1) moments
    m1 = raw[1]
    var_w = raw[2] - m1**2
    mu4_w = raw[4] - 4 * m1 * raw[3] + 6 * m1**2 * raw[2] - 3 * m1**4
    scale = 4.0 / math.sqrt(2 * math.pi)
    var, mu4 = scale**2 * var_w, scale**4 * mu4_w
    assert math.isclose(var, 16 * (2 - math.pi / 2) / (2 * math.pi))
    assert abs(var - 1.093) < 1e-3
    repeats = 50000
    tol = variance_tolerance(var, mu4, repeats)
    assert tol / var < 0.05
    got, _ = mu_variance("measure-valued", "normal-quadratic", repeats)
    assert abs(got - var) < tol, (got, var, tol)


# ---------------------------------------------------------------- f = cos(5x), x ~ N(1, 1), d/dmu
# Pathwise: g = -5 sin(5x). E sin(5x) = sin 5 e^{-12.5}; E sin^2(5x) = (1 - cos 10 e^{-50}) / 2, so
#   Var = 25 [(1 - cos 10 e^{-50}) / 2 - sin^2 5 e^{-25}] = 12.5 - 3e-10.
#   mu4 <= E g^4 = 625 E sin^4 = 625 (3/8 - cos 10 e^{-50} / 2 + cos 20 e^{-200} / 8) ~ 234.4.
# Score function: g = cos(5 + 5 eps) eps. E[eps cos(a + b eps)] = -b sin a e^{-b^2/2};
#   E[eps^2 cos(a + b eps)] = (1 - b^2) cos a e^{-b^2/2}; so E g = -5 sin 5 e^{-12.5},
#   E g^2 = 1/2 + (1 - 100) cos 10 e^{-50} / 2, Var = E g^2 - (E g)^2 ~ 0.5 - 6e-5;
#   mu4 ~ E g^4 = E[eps^4 cos^4] = 3 * 3/8 = 1.125 (oscillating terms are O(e^{-50})).


def test_cos_pathwise_variance_is_12_5() -> None:
    var = 25 * ((1 - math.cos(10) * math.exp(-50)) / 2 - (math.sin(5) * math.exp(-12.5)) ** 2)
    mu4 = 625 * (3 / 8 - math.cos(10) * math.exp(-50) / 2 + math.cos(20) * math.exp(-200) / 8)
    repeats = 20000
    tol = variance_tolerance(var, mu4, repeats)
    assert tol / var < 0.05
    got, _ = mu_variance("pathwise", "normal-cos", repeats, omega=5.0)
    assert abs(got - var) < tol, (got, var, tol)


def test_cos_score_function_variance_is_0_5() -> None:
    mean = -5 * math.sin(5) * math.exp(-12.5)
    var = 0.5 + (1 - 100) * math.cos(10) * math.exp(-50) / 2 - mean**2
    mu4 = 3 * 3 / 8
    repeats = 50000
    tol = variance_tolerance(var, mu4, repeats)
    assert tol / var < 0.05
    got, _ = mu_variance("reinforce", "normal-cos", repeats, omega=5.0)
    assert abs(got - var) < tol, (got, var, tol)
    # the trick is not always the winner: pathwise is ~25x noisier here
    assert mu_variance("pathwise", "normal-cos", 4000, omega=5.0)[0] > 10 * got


# ---------------------------------------------------------------- batched == loop


def _enumerated_score_moments(probs: torch.Tensor, f) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact mean, variance, fourth central moment of the one-sample REINFORCE gradient with
    respect to the logits of independent Bernoullis, g_i = f(b) (b_i - p_i), by enumeration."""
    d = probs.numel()
    outcomes = torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)), dtype=torch.float64)
    weight = (outcomes * probs + (1 - outcomes) * (1 - probs)).prod(-1)
    g = f(outcomes).unsqueeze(-1) * (outcomes - probs)
    mean = (weight.unsqueeze(-1) * g).sum(0)
    centred = g - mean
    var = (weight.unsqueeze(-1) * centred**2).sum(0)
    mu4 = (weight.unsqueeze(-1) * centred**4).sum(0)
    return mean, var, mu4


@pytest.mark.parametrize("vectorize", [True, False])
def test_batched_and_loop_agree_on_enumerated_bernoulli(vectorize: bool) -> None:
    # Both ways must reproduce the exact mean and variance (by enumeration of 2^3 outcomes).
    problem = get_problem("bernoulli-offset", dims=3, logits=0.3, offset=2.0)
    probs = torch.sigmoid(problem.params[0].detach())
    mean, var, mu4 = _enumerated_score_moments(probs, problem.f)
    repeats = 2000
    stats = rp.gradient_stats(
        problem.f, problem.q, problem.params, rp.ScoreFunction(), repeats=repeats, vectorize=vectorize
    )
    assert stats.method == ("batched" if vectorize else "loop")
    assert torch.all((stats.mean[0] - mean).abs() < 5 * (var / repeats).sqrt())
    assert torch.all((stats.variance[0] - var).abs() < 5 * ((mu4 - var**2) / repeats).sqrt())


@pytest.mark.parametrize("vectorize", [True, False])
def test_batched_dense_and_loop_agree_when_f_has_parameters(vectorize: bool) -> None:
    # x ~ N(mu, 1), f = (x - w)^2, pathwise: d/dmu = 2 (x - w), d/dw = -2 (x - w);
    # means +-2 (mu - w), variances 4, mu4 = 48 (as for the quadratic above).
    mu = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    repeats = 2000
    stats = rp.gradient_stats(
        lambda x: (x - w) ** 2,
        Normal(mu, 1.0),
        [mu, w],
        rp.Pathwise(),
        repeats=repeats,
        exact=[3.0, -3.0],
        vectorize=vectorize,
    )
    assert stats.method == ("batched-dense" if vectorize else "loop")
    for bias, variance in zip(stats.bias, stats.variance, strict=True):
        assert abs(float(bias)) < 5 * math.sqrt(4 / repeats)
        assert abs(float(variance) - 4) < variance_tolerance(4, 48, repeats)


def test_vector_parameters_and_callable_q() -> None:
    # q built by a callable; Independent Normal in 3 dims, f = sum (z - 2)^2: pathwise gradient
    # wrt loc is 2 (z - 2) per coordinate, variance 4 for unit scale, mean 2 (loc - 2).
    loc = torch.tensor([0.0, 1.0, 2.0], requires_grad=True)
    stats = rp.gradient_stats(
        lambda z: ((z - 2) ** 2).sum(-1),
        lambda: Independent(Normal(loc, 1.0), 1),
        [loc],
        rp.Pathwise(),
        repeats=4000,
        exact=[2 * (loc.detach() - 2)],
    )
    assert stats.method == "batched"
    assert stats.mean[0].shape == (3,)
    assert torch.all(stats.bias[0].abs() < 5 * stats.stderr[0])
    assert torch.all((stats.variance[0] - 4).abs() < variance_tolerance(4, 48, 4000))
    assert stats.evaluations == 1 and stats.seconds > 0


# ---------------------------------------------------------------- state and fallbacks


def test_moving_average_baseline_is_looped_one_estimate_at_a_time() -> None:
    baseline = MovingAverage(decay=0.9)
    p = get_problem("normal-quadratic")
    stats = rp.gradient_stats(p.f, p.q, p.params, rp.ScoreFunction(baseline=baseline), repeats=50)
    assert stats.method == "loop" and "state" in stats.note
    assert baseline.steps == 50  # every estimate went through the caller's baseline, in order


class CountingEstimator:
    """Pathwise with a call counter and no batching support (scalar q only): the batched
    attempt must fail on a copy and leave this object's count to the loop."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, f, q, num_samples):
        self.calls += 1
        if q.batch_shape != torch.Size():
            raise RuntimeError("scalar q only")
        return rp.Pathwise()(f, q, num_samples)


def test_failed_batched_attempt_does_not_touch_the_estimator() -> None:
    p = get_problem("normal-quadratic")
    estimator = CountingEstimator()
    stats = rp.gradient_stats(p.f, p.q, p.params, estimator, repeats=40)
    assert stats.method == "loop" and "failed" in stats.note
    assert estimator.calls == 40


def test_bad_input_errors() -> None:
    p = get_problem("normal-quadratic")
    with pytest.raises(TypeError, match="requires_grad"):
        rp.gradient_stats(p.f, p.q, [torch.zeros(())], rp.Pathwise())
    with pytest.raises(ValueError, match="repeats"):
        rp.gradient_stats(p.f, p.q, p.params, rp.Pathwise(), repeats=1)
    with pytest.raises(ValueError, match="exact"):
        rp.gradient_stats(p.f, p.q, p.params, rp.Pathwise(), repeats=10, exact=[1.0])
    with pytest.raises(TypeError, match="q must be"):
        rp.gradient_stats(p.f, lambda: 3, p.params, rp.Pathwise(), repeats=10)
    with pytest.raises(FloatingPointError, match="non-finite"):
        rp.gradient_stats(lambda x: torch.log(x - x), p.q, p.params, rp.Pathwise(), repeats=10)


def test_snr_and_zero_variance() -> None:
    # Exact-by-construction: measure-valued on a separable Bernoulli cost has zero variance.
    problem = get_problem("bernoulli-offset", dims=2)
    stats = rp.gradient_stats(problem.f, problem.q, problem.params, rp.MeasureValued(), repeats=20)
    assert torch.allclose(stats.mean[0], problem.exact[0], atol=1e-12)
    assert float(stats.variance[0].max()) < 1e-20
    assert np.all(stats.snr[0].numpy() > 1e6)
