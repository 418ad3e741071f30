"""bernoulli-toy: exact gradient, the closed-form variances of the issue, and the compare runner."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli

import reparam as rp
from reparam.baselines import LeaveOneOut
from reparam.problems import CompareRequest, get_problem
from reparam.problems.discrete import closed_form_variances, optimisation_runs, run_bernoulli_toy, toy_cost


def test_exact_gradient_and_the_issues_closed_forms() -> None:
    problem = get_problem("bernoulli-toy", D=200, t=0.499)
    torch.testing.assert_close(problem.exact[0], torch.full((200,), 2.5e-6, dtype=torch.float64))
    v = closed_form_variances(200, 0.499)
    c = 0.002 / 200
    assert v["exact"] == pytest.approx(2.5e-6)
    assert v["reinforce"] == pytest.approx(1.56e-2, rel=5e-3)
    assert v["reinforce-loo"] == pytest.approx(12.5 * c * c) == pytest.approx(1.25e-9)
    assert v["arm"] == pytest.approx((200 / 12 - 1 / 16) * c * c)
    assert v["arm"] == pytest.approx(1.66e-9, rel=5e-3)
    assert v["disarm"] == pytest.approx(199 / 16 * c * c)
    assert v["disarm"] == pytest.approx(1.24e-9, rel=5e-3)


def test_exact_gradient_matches_enumeration_off_the_midpoint() -> None:
    problem = get_problem("bernoulli-toy", D=4, t=0.3, phi=0.7)
    value = rp.Exact()(problem.f, problem.q, 1)
    (grad,) = torch.autograd.grad(value, problem.params[0])
    torch.testing.assert_close(grad, problem.exact[0])


ESTIMATORS = {
    "reinforce": (rp.ScoreFunction(), 1),
    "reinforce-loo": (rp.ScoreFunction(baseline=LeaveOneOut()), 2),
    "arm": (rp.ARM(), 1),
    "disarm": (rp.DisARM(), 1),
}


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize(("d", "t", "phi"), [(200, 0.499, 0.0), (1, 0.45, 0.0), (30, 0.2, -1.3)])
def test_measured_variance_matches_closed_form(name: str, d: int, t: float, phi: float) -> None:
    # R = 3000 independent estimates (replicated q, one cost per replicate). For replicate r,
    # s_r = mean_i (g_ri - g_i)^2 with the exact g_i has E[s_r] = the per-coordinate variance
    # (coordinates are exchangeable); the s_r are i.i.d. over r, so their mean has standard
    # error sd(s) / sqrt(R), estimated from the data: |mean(s) - closed form| < 5 standard errors.
    estimator, n = ESTIMATORS[name]
    r = 3000
    logits = torch.full((r, d), phi, dtype=torch.float64, requires_grad=True)
    value = estimator(toy_cost(t), Bernoulli(logits=logits), n)
    (grads,) = torch.autograd.grad(value.sum(), logits)
    closed = closed_form_variances(d, t, phi)
    s = (grads - closed["exact"]).pow(2).mean(-1)
    if closed[name] == 0.0:  # DisARM with D = 1 is exact (Rao-Blackwellised to a constant)
        assert float(s.max()) < 1e-20
        return
    se = float(s.std()) / r**0.5
    # (+ a 1e-9 relative allowance for rounding: at D = 1, p = 1/2 REINFORCE's and RLOO's squared
    # errors take a single value, so their sample standard deviation is zero.)
    assert abs(float(s.mean()) - closed[name]) < 5 * se + 1e-9 * closed[name]


def test_low_variance_estimators_find_the_optimum_and_reinforce_does_not() -> None:
    # D = 1, t = 0.499: ARM's and DisARM's gradients always have the right sign (see the closed
    # forms), so Adam drives p down steadily; REINFORCE's signal-to-noise ratio is 0.004.
    runs = {r.estimator: r for r in optimisation_runs(("reinforce", "disarm", "arm"), steps=300, lr=0.05)}
    assert runs["disarm"].final < 0.01 and runs["arm"].final < 0.01
    assert runs["reinforce"].final > 0.1


def test_runner_writes_tables_and_plot(tmp_path) -> None:
    request = CompareRequest(
        problem="bernoulli-toy",
        estimators=("reinforce", "disarm", "rebar"),
        repeats=50,
        out=tmp_path,
        options={"D": 5, "t": 0.45, "steps": 5},
    )
    run_bernoulli_toy(request)
    text = (tmp_path / "table.md").read_text()
    assert "D = 5, t = 0.45" in text and "disarm" in text and "optimisation runs" in text
    assert (tmp_path / "runs.png").stat().st_size > 1000


def test_unknown_option_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="valid: D, lr, phi, short, steps, t"):
        run_bernoulli_toy(CompareRequest(problem="bernoulli-toy", out=tmp_path, options={"temp": 1}))
