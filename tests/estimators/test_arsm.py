"""ARSM (Yin, Yue & Zhou 2019): unbiased against rp.Exact() on costs coupling categorical
variables, one batched call of f with every swap, the limits at masked categories, and its
variance against RLOO measured at equal evaluations of f (both ways of counting them)."""

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



def test_unbiased_on_a_coupled_cost_of_three_categoricals() -> None:
    exact = exact_gradient(coupled_cost, COUPLED_LOGITS)
    estimates = replicated(rp.ARSM(), coupled_cost, COUPLED_LOGITS, 1, 8000)
    assert max_abs_z(estimates, exact) < 5


def test_unbiased_for_independent_onehot_with_masked_category() -> None:
    # Independent(OneHotCategorical) with the event of 2 variables; one category masked (-inf).
    logits = torch.tensor([[0.5, -0.3, 0.1], [-0.8, -math.inf, 0.6]], dtype=torch.float64)

    def make_q(t: Tensor) -> Independent:
        return Independent(OneHotCategorical(logits=t), 1)

    exact = exact_gradient(onehot_cost, logits.nan_to_num(neginf=-800.0), make_q)
    estimates = replicated(rp.ARSM(), onehot_cost, logits, 2, 8000, make_q)
    assert bool((estimates[:, 1, 1] == 0).all())  # no gradient at the masked logit
    assert torch.isfinite(estimates).all()
    assert max_abs_z(estimates, exact) < 5


def test_every_swap_in_one_call_and_the_cost_in_evaluations() -> None:
    rows: list[tuple[int, ...]] = []

    def f(z: Tensor) -> Tensor:
        rows.append(tuple(z.shape))
        return coupled_cost(z)

    q = Categorical(logits=COUPLED_LOGITS)
    rp.ARSM()(f, q, 3)
    # N (1 + K (K - 1) / 2) = 3 * 7 = 21 rows, in one call.
    assert rows == [(21, 3)]
    assert rp.ARSM().evaluations(q, 3) == 21 == rp.evaluations(rp.ARSM(), q, 3)


def test_masked_logits_are_never_drawn_and_get_no_gradient() -> None:
    (v_inf, g_inf), (v_lim, g_lim) = masked_and_limit(rp.ARSM(), seeded(7))
    finite = torch.isfinite(MASKED_LOGITS)
    assert torch.isfinite(v_inf) and torch.isfinite(g_inf).all()
    assert bool((g_inf[~finite] == 0).all())
    # Same random numbers, same actions: the same value. The gradients differ draw by draw: at
    # the stand-in -800 a masked category still gets ARSM's zero-mean swap noise (passed on to
    # the others through Categorical's normalisation); at -inf it is credited nothing, the
    # limit of the expectation (unbiasedness there: the Independent(OneHotCategorical) test).
    torch.testing.assert_close(v_inf, v_lim, rtol=1e-12, atol=1e-12)
    assert bool((g_lim[~finite] != 0).any())


def test_variance_against_rloo_at_equal_evaluations() -> None:
    # Single-variable toy, K = 4: one ARSM draw evaluates 1 + 6 = 7 swaps, of which exactly
    # K = 4 pseudo-actions are distinct. Measured (benchmarks/bench_categorical_estimators.py):
    # counting every evaluated swap ARSM has ~1.6x RLOO(7)'s variance; counting only the
    # distinct pseudo-actions (the paper's accounting) ~0.72x RLOO(4)'s. Both are asserted with
    # 5 standard errors of the log ratio (one-sided false-alarm rate 2.9e-7 each).
    logits = torch.zeros(1, 4, dtype=torch.float64)
    arsm = replicated(rp.ARSM(), toy_cost, logits, 1, 20000)
    rloo7 = replicated(rp.ScoreFunction(LeaveOneOut()), toy_cost, logits, 7, 20000)
    rloo4 = replicated(rp.ScoreFunction(LeaveOneOut()), toy_cost, logits, 4, 20000)
    worse, se7 = log_variance_ratio(arsm, rloo7)
    better, se4 = log_variance_ratio(arsm, rloo4)
    assert worse - 5 * se7 > 0, (math.exp(worse), se7)
    assert better + 5 * se4 < 0, (math.exp(better), se4)


def test_refusals_name_the_problem() -> None:
    with pytest.raises(TypeError, match="ARSM"):
        rp.ARSM()(lambda b: b.sum(-1), Bernoulli(logits=torch.zeros(3)), 1)
    with pytest.raises(ValueError, match=re.escape("num_samples >= 1")):
        rp.ARSM()(coupled_cost, Categorical(logits=COUPLED_LOGITS), 0)
