"""RLOO (ScoreFunction with LeaveOneOut) and plain REINFORCE on the discrete families."""

from __future__ import annotations

import pytest

import reparam as rp
from reparam.baselines import LeaveOneOut

# Unbiasedness z-test as in test_arm.py: |z| < 5 per coordinate (false-alarm rate < 6e-7).


@pytest.mark.parametrize("num_samples", [2, 4])
def test_rloo_unbiased_with_interactions(discrete_case, zscores, num_samples: int) -> None:
    _, exact = discrete_case.exact_gradient()
    estimator = rp.ScoreFunction(baseline=LeaveOneOut())
    estimates = discrete_case.replicated_gradients(estimator, num_samples, 20000)
    assert zscores(estimates, exact).abs().max() < 5


def test_reinforce_unbiased_with_interactions(discrete_case, zscores) -> None:
    _, exact = discrete_case.exact_gradient()
    estimates = discrete_case.replicated_gradients(rp.ScoreFunction(), 1, 30000)
    assert zscores(estimates, exact).abs().max() < 5
