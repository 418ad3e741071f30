"""Higher-order derivatives of the score-function surrogate (DiCE form, issue 13 point 2).

Each test draws ``R`` independent Hessian estimates in one call: every scalar parameter is a
leaf of shape ``(R,)`` (or ``(R, *shape)``), ``f`` returns one cost per replicate, and each cost
is credited only with its own replicate's log-density, so the Hessian of ``value.sum()`` is
block diagonal over replicates and ``grad(grad(value.sum())[:, i].sum())`` is row ``i`` of every
replicate's own Hessian. Exact Hessians come from closed forms or enumeration, differentiated
twice by autograd in float64.

Thresholds: |z| < 5 per Hessian entry, two-sided false-alarm rate 5.7e-7 per entry (at most
36 entries per test: < 2.1e-5 per test). Entries with zero sampling variance (e.g. d^2/dw^2 of
a cost with its own parameter) are deterministic and compared at float64 rounding tolerance.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Normal

import reparam as rp
from reparam.baselines import DeltaMethod, Learned, LeaveOneOut, MovingAverage

R = 20000
N = 4


def make_baseline(name: str) -> object | None:
    if name == "none":
        return None
    if name == "moving_average":
        baseline = MovingAverage(0.5)
        baseline._average, baseline.steps = 1.3, 1  # a non-zero baseline from the first call
        return baseline
    if name == "leave_one_out":
        return LeaveOneOut()
    if name == "learned":
        module = nn.LazyLinear(1, dtype=torch.float64)
        return Learned(module)
    return DeltaMethod()


BASELINES = ["none", "moving_average", "leave_one_out", "learned", "delta_method"]


def hessian_estimates(value: Tensor, leaves: Sequence[Tensor]) -> Tensor:
    """Per-replicate Hessians ``(R, P, P)`` of ``value.sum()`` over the flattened ``leaves``
    (each shaped ``(R, ...)``); a parameter absent from a gradient counts as zero."""
    grads = torch.autograd.grad(value.sum(), leaves, create_graph=True)
    flat = torch.cat([g.reshape(g.shape[0], -1) for g in grads], dim=1)
    rows = []
    for i in range(flat.shape[1]):
        row = torch.autograd.grad(flat[:, i].sum(), leaves, retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (torch.zeros_like(leaf) if r is None else r).reshape(leaf.shape[0], -1)
                    for r, leaf in zip(row, leaves, strict=True)
                ],
                dim=1,
            )
        )
    return torch.stack(rows, dim=1)


def assert_unbiased_hessian(estimates: Tensor, exact: Tensor) -> None:
    """z-test per entry (|z| < 5, false-alarm rate 5.7e-7 each); zero-variance entries must
    match at float64 rounding tolerance."""
    mean = estimates.mean(0)
    se = estimates.std(0) / math.sqrt(estimates.shape[0])
    deterministic = se < 1e-10 * (1 + exact.abs())
    z = torch.where(deterministic, torch.zeros_like(mean), (mean - exact) / se)
    assert bool((z.abs() < 5).all()), f"z-scores\n{z}\nmean\n{mean}\nexact\n{exact}"
    close = (mean - exact).abs() < 1e-8 * (1 + exact.abs())
    assert bool((close | ~deterministic).all()), f"deterministic entries off: {mean} vs {exact}"


def closed_form_hessian(fn: Callable[..., Tensor], values: Sequence[float]) -> Tensor:
    point = tuple(torch.tensor(v, dtype=torch.float64) for v in values)
    rows = torch.autograd.functional.hessian(fn, point)
    return torch.stack([torch.stack(list(row)) for row in rows])


def leaves_for(values: Sequence[float]) -> list[Tensor]:
    return [torch.full((R,), v, dtype=torch.float64, requires_grad=True) for v in values]


@pytest.mark.parametrize("baseline", BASELINES)
def test_normal_hessian_of_cos_plus_square(baseline: str) -> None:
    # E_{N(mu, s)}[cos z + z^2] = cos(mu) exp(-s^2/2) + mu^2 + s^2 (the E[z^2] plus a
    # non-quadratic part, so DeltaMethod's expansion is not exact and every estimate is random).
    # Before the DiCE surrogate the loc-loc entry for z^2 alone was -1.25 (no baseline) or 0
    # (LeaveOneOut) instead of 2.
    values = (0.5, 1.0)
    exact = closed_form_hessian(lambda m, s: torch.cos(m) * torch.exp(-(s**2) / 2) + m**2 + s**2, values)
    mu, sigma = leaves_for(values)
    estimator = rp.ScoreFunction(make_baseline(baseline))  # type: ignore[arg-type]
    value = rp.expect(lambda z: torch.cos(z) + z**2, Normal(mu, sigma), estimator, num_samples=N)
    assert_unbiased_hessian(hessian_estimates(value, [mu, sigma]), exact)


@pytest.mark.parametrize("baseline", BASELINES)
def test_cross_terms_with_the_cost_own_parameter(baseline: str) -> None:
    # E_{N(mu, s)}[(z - w)^2] = (mu - w)^2 + s^2: d2/dmu dw = -2 comes from the cross term
    # grad_w f * grad_mu log q; d2/dw2 = 2 is deterministic.
    values = (0.5, 1.2, 1.5)
    exact = closed_form_hessian(lambda m, s, w: (m - w) ** 2 + s**2, values)
    mu, sigma, w = leaves_for(values)
    estimator = rp.ScoreFunction(make_baseline(baseline))  # type: ignore[arg-type]
    value = rp.expect(lambda z: (z - w) ** 2, Normal(mu, sigma), estimator, num_samples=N)
    assert_unbiased_hessian(hessian_estimates(value, [mu, sigma, w]), exact)


@pytest.mark.parametrize(
    ("sampling", "baseline"),
    [
        (rp.Antithetic(), "none"),
        (rp.Stratified(), "moving_average"),
        (rp.ImportanceSampling(1.2), "leave_one_out"),
        (rp.ImportanceSampling(1.2), "none"),
    ],
)
def test_samplers_keep_hessians_unbiased(sampling: object, baseline: str) -> None:
    values = (0.5, 1.0)
    exact = closed_form_hessian(lambda m, s: torch.cos(m) * torch.exp(-(s**2) / 2) + m**2 + s**2, values)
    mu, sigma = leaves_for(values)
    estimator = rp.ScoreFunction(make_baseline(baseline), sampling=sampling)  # type: ignore[arg-type]
    value = rp.expect(lambda z: torch.cos(z) + z**2, Normal(mu, sigma), estimator, num_samples=N)
    assert_unbiased_hessian(hessian_estimates(value, [mu, sigma]), exact)


def enumerated_hessian(case) -> Tensor:
    """Hessian of E[f] in the logits by summing over every configuration (itertools)."""

    def expectation(logits: Tensor) -> Tensor:
        q = case.make_q(logits)
        k = 2 if isinstance(q, Bernoulli) else logits.shape[-1]
        total = torch.zeros((), dtype=torch.float64)
        for config in itertools.product(range(k), repeat=q.batch_shape.numel()):
            z = case.values(config)
            total = total + q.log_prob(z).sum().exp() * case.f(z.unsqueeze(0))[0]
        return total

    hessian = torch.autograd.functional.hessian(expectation, case.logits.detach().clone())
    p = case.logits.numel()
    return hessian.reshape(p, p)


@pytest.mark.parametrize("baseline", ["none", "moving_average", "leave_one_out", "learned"])
def test_discrete_hessians_by_enumeration(discrete_case, baseline: str) -> None:
    # Bernoulli (3 logits), Categorical (2 x 3 logits, costs credited per replicate over a
    # (R, 2) batch) and OneHotCategorical, all with interacting costs.
    exact = enumerated_hessian(discrete_case)
    logits = discrete_case.logits.detach().expand(R, *discrete_case.logits.shape).clone().requires_grad_(True)
    estimator = rp.ScoreFunction(make_baseline(baseline))  # type: ignore[arg-type]
    value = estimator(discrete_case.f, discrete_case.make_q(logits), N)
    assert value.shape == (R,)
    assert_unbiased_hessian(hessian_estimates(value, [logits]), exact)


def test_delta_method_hessian_on_bernoulli_is_exact_for_quadratic_cost(bernoulli_case) -> None:
    # The Bernoulli cost is quadratic in b, so the expansion is f itself, beta = 1 and the
    # Hessian comes from the correction beta * E_q[h] alone: exact, sample by sample.
    exact = enumerated_hessian(bernoulli_case)
    logits = bernoulli_case.logits.detach().expand(8, 3).clone().requires_grad_(True)
    value = rp.ScoreFunction(DeltaMethod())(bernoulli_case.f, Bernoulli(logits=logits), N)
    estimates = hessian_estimates(value, [logits])
    torch.testing.assert_close(estimates, exact.expand(8, 3, 3), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("baseline", BASELINES)
def test_value_is_exactly_the_mean_cost(baseline: str) -> None:
    seen: list[Tensor] = []

    def f(z: Tensor) -> Tensor:
        costs = torch.cos(z) + z**2
        seen.append(costs)
        return costs

    mu = torch.full((5,), 0.3, dtype=torch.float64, requires_grad=True)
    value = rp.ScoreFunction(make_baseline(baseline))(f, Normal(mu, 1.0), N)  # type: ignore[arg-type]
    assert torch.equal(value.detach(), seen[0].detach().mean(0))


@pytest.mark.parametrize("baseline", ["none", "moving_average", "leave_one_out"])
def test_first_order_gradient_is_the_reinforce_formula(baseline: str) -> None:
    # Same samples: the gradient is mean_n (f_n - b_n) grad log q(z_n) + grad f_n, to rounding.
    seen: list[Tensor] = []
    w = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)

    def f(z: Tensor) -> Tensor:
        seen.append(z)
        return (z - w) ** 2

    mu = torch.full((7,), 0.3, dtype=torch.float64, requires_grad=True)
    made = make_baseline(baseline)
    b = 0.0 if made is None else (made.value if isinstance(made, MovingAverage) else None)
    value = rp.ScoreFunction(made)(f, Normal(mu, 1.0), 5)  # type: ignore[arg-type]
    grad_mu, grad_w = torch.autograd.grad(value.sum(), (mu, w))
    z = seen[0]
    costs = ((z - w) ** 2).detach()
    if b is None:  # leave-one-out
        b = (costs.sum(0, keepdim=True) - costs) / 4
    expected_mu = ((costs - b) * (z - mu.detach())).mean(0)
    expected_w = (-2 * (z - w.detach())).mean(0).sum()
    torch.testing.assert_close(grad_mu, expected_mu, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad_w, expected_w, rtol=1e-12, atol=1e-14)

