"""UnorderedSet (Kool, van Hoof & Welling 2020): the set probabilities against a brute-force sum
over orderings, unbiased gradient and value against rp.Exact() for a batch of categorical
variables (masked categories included), exact when the set covers the support, refusal of costs
that couple variables, variance below RLOO at equal evaluations, no host syncs."""

from __future__ import annotations

import itertools
import math
import re
import sys
from pathlib import Path

import pytest
import torch
from sync_counter import count_syncs
from torch import Tensor
from torch.distributions import Categorical, Independent, OneHotCategorical

import reparam as rp
from reparam.baselines import LeaveOneOut
from reparam.estimators.unordered_set import _layers, _log_set_probabilities

sys.path.insert(0, str(Path(__file__).parent))  # the shared cases beside this file
from categorical_cases import exact_gradient, log_variance_ratio, max_abs_z, replicated, toy_cost

# z-tests: |z| < 5 per coordinate, two-sided false-alarm rate 5.7e-7 per coordinate (at most 15
# coordinates per test: < 9e-6 per test).

LOGITS = torch.tensor(
    [[0.2, -0.4, 0.9, 0.1, -1.5], [1.0, 0.1, -0.6, 0.3, 2.0], [0.0, -math.inf, -0.2, -1.0, 0.4]],
    dtype=torch.float64,
)
VALUES = torch.tensor(
    [[1.0, -2.0, 0.5, 3.0, 0.0], [0.3, 1.1, -0.7, 2.2, -1.0], [2.0, 0.1, 0.2, -3.0, 1.5]], dtype=torch.float64
)


def per_variable_cost(z: Tensor) -> Tensor:
    """One cost per variable (``(n, ..., 3)``): variable ``d`` at category ``c`` costs
    ``VALUES[d, c]`` (a nonlinear table: no baseline makes it trivial)."""
    d = torch.arange(3).expand_as(z)
    return VALUES[d, z]


def _brute_force(p: Tensor, subset: tuple[int, ...], rest: float) -> float:
    """Sum over the orderings of ``subset`` of ``prod_i p_i / (rest + mass not yet drawn)``."""
    total = 0.0
    for order in itertools.permutations(subset):
        prob, left = 1.0, rest + float(sum(p[t] for t in subset))
        for t in order:
            prob *= float(p[t]) / left
            left -= float(p[t])
        total += prob
    return total


def test_set_probabilities_equal_the_sum_over_orderings() -> None:
    # Deterministic (float64 rounding only): every subset of a drawn set of 4, with rest mass r.
    p = torch.tensor([0.05, 0.3, 0.1, 0.25], dtype=torch.float64)
    rest = 0.3
    sets = _log_set_probabilities(p.log(), torch.tensor(math.log(rest), dtype=torch.float64))
    _, where = _layers(4)
    for size in range(1, 5):
        for subset in itertools.combinations(range(4), size):
            mask = sum(1 << t for t in subset)
            got = float(sets[size][where[mask]].exp())
            assert math.isclose(got, _brute_force(p, subset, rest), rel_tol=1e-12), subset


@pytest.mark.parametrize("k", [1, 2, 3])
def test_unbiased_gradient_and_value(k: int) -> None:
    exact = exact_gradient(per_variable_cost, LOGITS)
    leaf = LOGITS.expand(12000, 3, 5).clone().requires_grad_(True)
    value = rp.UnorderedSet()(per_variable_cost, Categorical(logits=leaf), k)
    (grad,) = torch.autograd.grad(value.sum(), leaf)
    assert bool((grad[..., 2, 1] == 0).all())  # masked category: no gradient
    assert max_abs_z(grad, exact) < 5
    mean = rp.Exact()(per_variable_cost, Categorical(logits=LOGITS), 1)
    z = (value.mean(0) - mean) / (value.std(0) / math.sqrt(value.shape[0]))
    assert bool((z.abs() < 5).all()), z


def test_onehot_and_exact_when_the_set_covers_the_support() -> None:
    # Variable 2 has 4 possible categories: with k = 4 its set is its whole support, so its
    # gradient is exact in every draw; k = 5 covers every variable (masked one drawn last).
    exact = exact_gradient(per_variable_cost, LOGITS)
    for k, rows in ((4, [2]), (5, [0, 1, 2])):
        leaf = LOGITS.expand(50, 3, 5).clone().requires_grad_(True)
        q = OneHotCategorical(logits=leaf)
        value = rp.UnorderedSet()(lambda y: per_variable_cost(y.argmax(-1)), q, k)
        (grad,) = torch.autograd.grad(value.sum(), leaf)
        for d in rows:
            torch.testing.assert_close(grad[:, d], exact[d].expand(50, 5), rtol=1e-10, atol=1e-12)
        assert torch.isfinite(grad).all()


def test_f_at_masked_categories_never_counts() -> None:
    leaf = LOGITS.clone().requires_grad_(True)

    def f(z: Tensor) -> Tensor:  # nan at the masked category of variable 2
        cost = per_variable_cost(z)
        return torch.where((z == 1) & (torch.arange(3) == 2), math.nan, cost)

    value = rp.UnorderedSet()(f, Categorical(logits=leaf), 5)
    (grad,) = torch.autograd.grad(value.sum(), leaf)
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()


def test_variance_below_rloo_at_equal_evaluations() -> None:
    # Single-variable toy (K = 4), 3 evaluations of f each. Measured
    # (bench_categorical_estimators.py): ratio ~0.37. Asserted: log ratio below 0 by 5 standard
    # errors (one-sided false-alarm rate 2.9e-7 when the variances are equal).
    logits = torch.zeros(1, 4, dtype=torch.float64)
    ours = replicated(rp.UnorderedSet(), lambda z: toy_cost(z).unsqueeze(-1), logits, 3, 20000)
    rloo = replicated(rp.ScoreFunction(LeaveOneOut()), toy_cost, logits, 3, 20000)
    ratio, se = log_variance_ratio(ours, rloo)
    assert ratio + 5 * se < 0, (math.exp(ratio), se)


def test_costs_that_couple_variables_are_refused() -> None:
    q = Independent(Categorical(logits=LOGITS), 1)
    with pytest.raises(ValueError, match=re.escape("UnorderedSet() needs one cost per categorical variable")):
        rp.UnorderedSet()(lambda z: per_variable_cost(z).sum(-1), q, 2)
    with pytest.raises(ValueError, match="num_samples <= min"):
        rp.UnorderedSet()(per_variable_cost, Categorical(logits=LOGITS), 6)


def test_create_graph_is_refused_and_evaluations() -> None:
    leaf = LOGITS.clone().requires_grad_(True)
    q = Categorical(logits=leaf)
    value = rp.UnorderedSet()(per_variable_cost, q, 3)
    with pytest.raises(RuntimeError, match=re.escape("UnorderedSet() gives first derivatives only")):
        torch.autograd.grad(value.sum(), leaf, create_graph=True)
    assert rp.evaluations(rp.UnorderedSet(), q, 3) == 3


def test_no_host_syncs_per_step() -> None:
    leaf = LOGITS.nan_to_num(neginf=-5.0).float().requires_grad_(True)
    rp.UnorderedSet()(per_variable_cost, Categorical(logits=leaf, validate_args=False), 3).sum().backward()
    with count_syncs() as syncs:
        q = Categorical(logits=leaf, validate_args=False)
        rp.UnorderedSet()(lambda z: per_variable_cost(z).float(), q, 3).sum().backward()
    assert syncs.count == 0, str(syncs)


def test_size_zero_batch() -> None:
    leaf = torch.zeros(0, 4, dtype=torch.float64, requires_grad=True)
    value = rp.UnorderedSet()(lambda z: z.double(), Categorical(logits=leaf, validate_args=False), 2)
    (grad,) = torch.autograd.grad(value.sum(), leaf, allow_unused=True)
    assert value.shape == (0,) and grad is not None and grad.shape == leaf.shape
