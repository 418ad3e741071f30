"""CARMS (Dimitriev & Zhou 2021): the copula's uniform marginals, the pair weights against the
empirical joint law of two samples, unbiasedness against rp.Exact() on costs coupling categorical
variables, masked categories, and variance below RLOO at equal evaluations of f."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest
import torch
from seeds import seeded
from torch import Tensor
from torch.distributions import Bernoulli, Categorical, Independent, OneHotCategorical

import reparam as rp
from reparam.baselines import LeaveOneOut
from reparam.estimators.carms import _log_pair_weights, _pair_sums, dirichlet_copula

sys.path.insert(0, str(Path(__file__).parent))  # the shared cases beside this file
from categorical_cases import (
    COUPLED_LOGITS,
    MASKED_LOGITS,
    coupled_cost,
    exact_gradient,
    log_variance_ratio,
    masked_and_limit,
    max_abs_z,
    onehot_cost,
    replicated,
    toy_cost,
)

# z-tests: |z| < 5 per coordinate, two-sided false-alarm rate 5.7e-7 per coordinate (at most 12
# coordinates per test: < 7e-6 per test).



@pytest.mark.parametrize("n", [2, 3, 5])
def test_copula_marginals_are_uniform_and_pairs_follow_the_closed_form_cdf(n: int) -> None:
    u = dirichlet_copula(n, (200000,), torch.zeros((), dtype=torch.float64))
    r = u.shape[1]
    # Each u_i: mean 1/2 (sd of the mean sqrt(1/12 / R)); P(u_0 < a, u_1 < b) against the
    # closed-form CDF (sd sqrt(P (1 - P) / R)); |z| < 5: false-alarm rate 5.7e-7 per check.
    assert ((u.mean(1) - 0.5).abs() / math.sqrt(1 / 12 / r) < 5).all()
    for a, b in [(0.3, 0.6), (0.7, 0.8), (0.9, 0.9)]:
        p = ((u[0] < a) & (u[1] < b)).double().mean()
        cdf = max(a ** (1 / (n - 1)) + b ** (1 / (n - 1)) - 1, 0.0) ** (n - 1)
        assert abs(float(p) - cdf) < 5 * math.sqrt(max(cdf * (1 - cdf), 1 / r) / r)


def test_pair_weights_match_the_empirical_joint_law() -> None:
    # w(a, b) = q(a) q(b) / Q(a, b): check Q(a, b) = q(a) q(b) / w(a, b) against the frequency of
    # (z_0, z_1) = (a, b) among CARMS's own correlated samples (3 samples, K = 4).
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    n, r = 3, 200000
    seen: list[Tensor] = []
    logits = probs.log().expand(r, 4)
    rp.CARMS()(lambda z: seen.append(z) or z.double(), Categorical(logits=logits), n)
    z = seen[0]  # (n, R): sorted order is the natural one here
    joint = torch.zeros(4, 4, dtype=torch.float64)
    joint.index_put_((z[0], z[1]), torch.ones(r, dtype=torch.float64), accumulate=True)
    joint /= r
    pi = probs / probs.flip(0).cumsum(0).flip(0)
    log_w = _log_pair_weights(pi, n)
    for a in range(4):
        for b in range(4):
            if a == b:
                continue
            expected = float(probs[a] * probs[b] / log_w[min(a, b)].exp())
            sd = math.sqrt(expected * (1 - expected) / r)
            assert abs(float(joint[a, b]) - expected) < 5 * sd, (a, b, float(joint[a, b]), expected)


@pytest.mark.parametrize(("n", "k", "batch"), [(2, 4, (5,)), (5, 4, (3, 2)), (7, 10, (4,)), (3, 3, ())])
def test_pair_sums_by_position_equal_the_sum_over_pairs(n: int, k: int, batch: tuple[int, ...]) -> None:
    # s_i = sum_{j != i} w(min(m_i, m_j)) [m_i != m_j] (c_i - c_j), written out pair by pair.
    # Deterministic: the grouped sums reorder float64 additions of O(1) terms (error ~1e-15).
    position = torch.randint(0, k, (n, *batch))
    c = torch.randn(n, *batch, dtype=torch.float64)
    w = torch.rand(*batch, k, dtype=torch.float64) + 0.5
    earlier = torch.minimum(position.unsqueeze(1), position.unsqueeze(0))
    pair_w = w.expand(n, n, *batch, k).gather(-1, earlier.unsqueeze(-1)).squeeze(-1)
    pair_w = torch.where(position.unsqueeze(1) == position.unsqueeze(0), 0.0, pair_w)
    expected = (pair_w * (c.unsqueeze(1) - c.unsqueeze(0))).sum(1)
    torch.testing.assert_close(_pair_sums(c, position, w), expected, rtol=0, atol=1e-12)


def test_unbiased_on_a_coupled_cost_of_three_categoricals() -> None:
    exact = exact_gradient(coupled_cost, COUPLED_LOGITS)
    for n in (2, 4):
        estimates = replicated(rp.CARMS(), coupled_cost, COUPLED_LOGITS, n, 10000)
        assert max_abs_z(estimates, exact) < 5, n


def test_unbiased_for_independent_onehot_with_masked_category() -> None:
    logits = torch.tensor([[0.5, -0.3, 0.1], [-0.8, -math.inf, 0.6]], dtype=torch.float64)

    def make_q(t: Tensor) -> Independent:
        return Independent(OneHotCategorical(logits=t), 1)

    exact = exact_gradient(onehot_cost, logits.nan_to_num(neginf=-800.0), make_q)
    estimates = replicated(rp.CARMS(), onehot_cost, logits, 3, 10000, make_q)
    assert bool((estimates[:, 1, 1] == 0).all()) and torch.isfinite(estimates).all()
    assert max_abs_z(estimates, exact) < 5


def test_masked_logits_give_the_limit_with_the_same_random_numbers() -> None:
    (v_inf, g_inf), (v_lim, g_lim) = masked_and_limit(rp.CARMS(), seeded(7))
    finite = torch.isfinite(MASKED_LOGITS)
    assert torch.isfinite(v_inf) and torch.isfinite(g_inf).all()
    assert bool((g_inf[~finite] == 0).all())
    torch.testing.assert_close(v_inf, v_lim, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_inf[finite], g_lim[finite], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("name", "logits", "f"), [
    ("toy", torch.zeros(1, 4, dtype=torch.float64), toy_cost),
    ("coupled", COUPLED_LOGITS, coupled_cost),
])
def test_variance_below_rloo_at_equal_evaluations(name: str, logits: Tensor, f) -> None:
    # n = 4 samples each (4 evaluations of f). Measured (bench_categorical_estimators.py):
    # variance ratio ~0.41 on the toy and ~0.86 on the coupled cost. Asserted: log ratio below
    # 0 by 5 standard errors (one-sided false-alarm rate 2.9e-7 when the variances are equal).
    carms = replicated(rp.CARMS(), f, logits, 4, 20000)
    rloo = replicated(rp.ScoreFunction(LeaveOneOut()), f, logits, 4, 20000)
    ratio, se = log_variance_ratio(carms, rloo)
    assert ratio + 5 * se < 0, (name, math.exp(ratio), se)
    assert max_abs_z(carms, exact_gradient(f, logits)) < 5  # uniform logits (ties) included


def test_one_call_of_f_and_the_cost_in_evaluations() -> None:
    rows: list[tuple[int, ...]] = []

    def f(z: Tensor) -> Tensor:
        rows.append(tuple(z.shape))
        return coupled_cost(z)

    q = Categorical(logits=COUPLED_LOGITS)
    rp.CARMS()(f, q, 5)
    assert rows == [(5, 3)] and rp.evaluations(rp.CARMS(), q, 5) == 5


def test_refusals_name_the_problem() -> None:
    with pytest.raises(TypeError, match="CARMS"):
        rp.CARMS()(lambda b: b.sum(-1), Bernoulli(logits=torch.zeros(3)), 2)
    with pytest.raises(ValueError, match=re.escape("CARMS() needs num_samples >= 2")):
        rp.CARMS()(coupled_cost, Categorical(logits=COUPLED_LOGITS), 1)
