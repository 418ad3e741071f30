"""Misuse users hit in the diagnostics: each error names the argument and the fix."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal

import reparam as rp


def _loc() -> torch.Tensor:
    return torch.tensor(0.5, dtype=torch.float64, requires_grad=True)


def test_freed_graph_names_the_factory_fix() -> None:
    # README's order: expect(...).backward() frees q's graph (q = Normal(exp(loc), 1) hangs off
    # loc through exp), then gradient_stats differentiates through q again.
    loc = _loc()
    q = Normal(loc.exp(), 1.0)
    rp.expect(lambda z: z**2, q, num_samples=4).backward()
    with pytest.raises(RuntimeError, match=r"lambda: Normal\(loc, scale\)"):
        rp.gradient_stats(lambda z: z**2, q, [loc], repeats=8)
    with pytest.raises(RuntimeError, match="graph was freed"):
        rp.compare(lambda z: z**2, q, [loc], {"pathwise": rp.Pathwise()}, repeats=8)
    with pytest.raises(RuntimeError, match="factory"):
        rp.check_unbiased(lambda z: z**2, q, [loc], rp.Pathwise(), exact=[1.0], repeats=8)


def test_factory_q_rebuilds_the_graph_after_backward() -> None:
    # d/dloc E[z^2] for z ~ N(e^loc, 1) is 2 e^{2 loc}; pathwise estimates 2 z e^loc have
    # variance 4 e^{2 loc} = 10.9, so with 4000 repeats the standard error is 0.052.
    loc = _loc()
    rp.expect(lambda z: z**2, Normal(loc.exp(), 1.0), num_samples=4).backward()
    exact = 2 * torch.exp(2 * loc.detach())
    report = rp.check_unbiased(
        lambda z: z**2, lambda: Normal(loc.exp(), 1.0), [loc], rp.Pathwise(), exact=[exact], repeats=4000
    )
    assert report.passed, str(report)  # |z| < 5: false-alarm rate 5.7e-7


def test_params_q_does_not_depend_on_are_refused() -> None:
    loc, stray = _loc(), torch.zeros(3, requires_grad=True)
    for vectorize in (True, False):
        pattern = r"no gradient reaches params\[1\] \(shape \(3,\)\): q \(and f\) do not depend"
        with pytest.raises(ValueError, match=pattern):
            rp.gradient_stats(lambda z: z**2, Normal(loc, 1.0), [loc, stray], repeats=8, vectorize=vectorize)


def test_a_parameter_with_zero_gradient_is_not_refused() -> None:
    # Reached but zero (the cost does not vary with loc here): a real zero, not misuse.
    loc = _loc()
    stats = rp.gradient_stats(lambda z: 0.0 * z, Normal(loc, 1.0), [loc], repeats=8)
    assert float(stats.variance[0]) == 0.0
    with pytest.raises(ValueError, match="no gradient reaches params"):  # no graph at all
        rp.gradient_stats(lambda z: torch.zeros_like(z), Normal(loc, 1.0), [loc], repeats=8)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"timing_repeats": 0}, "timing_repeats must be an int >= 1"),
        ({"timing_repeats": -1}, "timing_repeats must be an int >= 1"),
        ({"repeats": 0}, "repeats must be an int >= 2"),
        ({"repeats": 1}, "repeats must be an int >= 2"),
        ({"chunk_size": 0}, "chunk_size must be None"),
        ({"chunk_size": -3}, "chunk_size must be None"),
        ({"num_samples": 0}, "num_samples must be >= 1"),
    ],
)
def test_gradient_stats_bad_numbers(kwargs: dict, pattern: str) -> None:
    loc = _loc()
    with pytest.raises((ValueError, TypeError), match=pattern):
        rp.gradient_stats(lambda z: z**2, Normal(loc, 1.0), [loc], **{"repeats": 8, **kwargs})


def test_compare_and_curves_bad_numbers() -> None:
    loc = _loc()
    ests = {"pathwise": rp.Pathwise()}
    with pytest.raises(ValueError, match="repeats must be an int >= 2"):
        rp.compare(lambda z: z**2, Normal(loc, 1.0), [loc], ests, repeats=0)
    with pytest.raises(ValueError, match="num_samples must be an int >= 1"):
        rp.compare(lambda z: z**2, Normal(loc, 1.0), [loc], ests, num_samples=0)
    with pytest.raises(ValueError, match="non-empty list of ints >= 1"):
        rp.variance_curves(lambda z: z**2, Normal(loc, 1.0), [loc], ests, num_samples=(1, 0))
    with pytest.raises(ValueError, match="non-empty list of ints >= 1"):
        rp.variance_curves(lambda z: z**2, Normal(loc, 1.0), [loc], ests, num_samples=())
    with pytest.raises(ValueError, match="repeats must be an int >= 2"):
        rp.variance_curves(lambda z: z**2, Normal(loc, 1.0), [loc], ests, repeats=-5)
    with pytest.raises(TypeError, match="estimators must be a non-empty dict"):
        rp.variance_curves(lambda z: z**2, Normal(loc, 1.0), [loc], [rp.Pathwise()])
    curves = rp.variance_curves(lambda z: z**2, Normal(loc, 1.0), [loc], ests, num_samples=2, repeats=8)
    assert [p.num_samples for p in curves.points] == [2]


def test_estimator_returning_a_float_is_named() -> None:
    loc = _loc()
    with pytest.raises(TypeError, match="returned float, not a torch.Tensor"):
        rp.gradient_stats(lambda z: z**2, Normal(loc, 1.0), [loc], lambda *a: 3.0, repeats=8)


def test_check_unbiased_takes_gradient_stats_order_and_keywords() -> None:
    # E[2z] = 2 loc for z ~ N(loc, 1): pathwise gradient of z^2. Both orders give one report.
    loc = _loc()
    args = (lambda z: z**2, Normal(loc, 1.0), [loc])
    exact = [2 * loc.detach()]
    new = rp.check_unbiased(*args, rp.Pathwise(), 4, 2000, exact, chunk_size=500, timing_repeats=1)
    assert new.passed, str(new)  # |z| < 5: false-alarm rate 5.7e-7
    assert new.stats.num_samples == 4 and new.stats.repeats == 2000
    keywords = rp.check_unbiased(*args, estimator=rp.Pathwise(), num_samples=4, repeats=2000, exact=exact)
    assert keywords.passed, str(keywords)
    legacy = rp.check_unbiased(rp.Pathwise(), *args, exact, num_samples=4, repeats=2000)
    assert legacy.passed and legacy.stats.num_samples == 4
    factory = rp.check_unbiased(rp.Pathwise(), args[0], lambda: Normal(loc, 1.0), [loc], exact, repeats=100)
    assert factory.stats.repeats == 100
    default = rp.check_unbiased(*args, exact=exact, repeats=100)
    assert "Pathwise" in default.stats.estimator
    with pytest.raises(ValueError, match="needs exact="):
        rp.check_unbiased(*args, rp.Pathwise())
