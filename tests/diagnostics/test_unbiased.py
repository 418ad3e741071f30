"""rp.check_unbiased flags a biased estimator and passes unbiased ones."""

from __future__ import annotations

import torch

import reparam as rp
from reparam.problems import get_problem


class ScaledPathwise:
    """A deliberately biased estimator: the pathwise gradient of 1.2 f."""

    def __call__(self, f, q, num_samples):
        return rp.Pathwise()(lambda x: 1.2 * f(x), q, num_samples)


def test_flags_a_biased_estimator() -> None:
    # On N(1, 1), f = x^2 the bias is 0.2 * 2 = 0.4 per coordinate, while the pathwise
    # standard errors at 4000 repeats are sqrt(1.44 * 4 / 4000) = 0.038 (mu) and
    # sqrt(1.44 * 12 / 4000) = 0.066 (sigma): z of about 10 and 6, above the threshold 5.
    p = get_problem("normal-quadratic")
    report = rp.check_unbiased(
        ScaledPathwise(), p.f, p.q, p.params, p.exact, repeats=4000, param_names=p.param_names
    )
    assert not report.passed and not report
    assert report.max_abs_z > 5
    assert "FAILED" in str(report) and "disagrees" in str(report)


def test_passes_unbiased_estimators() -> None:
    # An unbiased estimator exceeds |z| = 5 with probability < 6e-7 per coordinate.
    p = get_problem("normal-quadratic")
    for estimator in (rp.Pathwise(), rp.ScoreFunction(), rp.MeasureValued()):
        report = rp.check_unbiased(estimator, p.f, p.q, p.params, p.exact, repeats=4000)
        assert report.passed, str(report)
        assert "PASSED" in str(report)


def test_zero_variance_estimators_judged_up_to_rounding() -> None:
    # Measure-valued on a separable Bernoulli cost is exact (zero variance): it passes against
    # the right gradient and fails against a wrong one.
    p = get_problem("bernoulli-offset", dims=3)
    assert rp.check_unbiased(rp.MeasureValued(), p.f, p.q, p.params, p.exact, repeats=50).passed
    wrong = (p.exact[0] + 1e-3,)
    report = rp.check_unbiased(rp.MeasureValued(), p.f, p.q, p.params, wrong, repeats=50)
    assert not report.passed
    assert torch.isinf(report.z[0]).all() or report.max_abs_z > 1e6
