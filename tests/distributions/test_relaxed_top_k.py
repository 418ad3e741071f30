"""RelaxedTopK: hard and low-temperature marginals against the exact inclusion probabilities of
Gumbel-top-k (sampling without replacement, by enumeration), sums, gradients, validation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from reparam.distributions import RelaxedTopK
from reparam.distributions.relaxed_top_k import relaxed_top_k, top_k_indicator

D64 = torch.float64
N = 100_000
LOGITS = [1.0, 0.0, -1.0, 0.5, 2.0]


def _inclusion(logits: list[float], k: int) -> tuple[np.ndarray, dict[tuple[int, ...], float]]:
    """Exact P(i in S) and P(S) for k draws without replacement, p proportional to exp(logits),
    by enumerating every ordered sequence (independent of the code under test)."""
    p = np.exp(logits) / np.exp(logits).sum()
    inclusion, subsets = np.zeros(len(p)), {}
    for seq in itertools.permutations(range(len(p)), k):
        prob, left = 1.0, 1.0
        for i in seq:
            prob *= p[i] / left
            left -= p[i]
        inclusion[list(seq)] += prob
        key = tuple(sorted(seq))
        subsets[key] = subsets.get(key, 0.0) + prob
    return inclusion, subsets


@pytest.mark.parametrize("k", [1, 2, 3])
def test_marginals_match_sampling_without_replacement(k: int) -> None:
    exact, _ = _inclusion(LOGITS, k)
    exact_t = torch.tensor(exact, dtype=D64)
    assert float(exact_t.sum()) == pytest.approx(k, rel=1e-12)
    q = RelaxedTopK(torch.tensor(LOGITS, dtype=D64), k, 1.0)
    perturbed = q.perturb((N,))
    hard = top_k_indicator(perturbed, k)
    se = torch.sqrt(exact_t * (1 - exact_t) / N)
    # the hard k-hot is an exact Gumbel-top-k draw: |z| < 5 per item, false-alarm rate 5.7e-7 each
    assert ((hard.mean(0) - exact_t).abs() < 5 * se).all(), (hard.mean(0), exact_t)
    # as t -> 0 the relaxed marginals tend to the same: at t = 1e-3 the mean |y - hard| was
    # measured ~5e-4 (shift of a marginal <= 1e-4 << SE ~1.5e-3): the same |z| < 5 test holds
    soft = relaxed_top_k(perturbed, k, torch.tensor(1e-3, dtype=D64))
    assert ((soft.mean(0) - exact_t).abs() < 5 * se).all(), (soft.mean(0), exact_t)
    torch.testing.assert_close(soft.sum(-1), torch.full((N,), float(k), dtype=D64), rtol=0, atol=1e-12)


def test_relaxation_converges_to_the_k_hot_as_temperature_falls() -> None:
    # mean |y - hard| measured 0.44 t, 0.51 t, 0.47 t at t = 0.1, 0.01, 0.001 (k = 2); the bound
    # t leaves a factor 2 (the Monte Carlo error of the mean over 5e5 entries is ~1e-3 relative)
    q = RelaxedTopK(torch.tensor(LOGITS, dtype=D64), 2, 1.0)
    perturbed = q.perturb((N,))
    hard = top_k_indicator(perturbed, 2)
    gaps = []
    for t in (0.1, 0.01, 0.001):
        gap = float((relaxed_top_k(perturbed, 2, torch.tensor(t, dtype=D64)) - hard).abs().mean())
        assert 0.1 * t < gap < t
        gaps.append(gap)
    assert gaps[0] > gaps[1] > gaps[2]


def test_subset_log_prob_matches_enumeration() -> None:
    _, subsets = _inclusion(LOGITS, 3)
    keys = list(subsets)
    k_hot = torch.zeros(len(keys), 5, dtype=D64)
    for row, key in enumerate(keys):
        k_hot[row, list(key)] = 1.0
    q = RelaxedTopK(torch.tensor(LOGITS, dtype=D64), 3, 0.5)
    exact = torch.tensor([subsets[key] for key in keys], dtype=D64)
    torch.testing.assert_close(q.subset_log_prob(k_hot).exp(), exact, rtol=1e-12, atol=0)


@pytest.mark.parametrize("temperature", [1.0, 0.1, 1e-8])
def test_straight_through_forward_is_k_hot_with_finite_gradients(temperature: float) -> None:
    logits = torch.tensor([[1.0, -math.inf, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    y = RelaxedTopK(logits, 2, temperature, straight_through=True).rsample((50,))
    assert torch.equal(y.detach(), y.detach().round()) and (y.detach().sum(-1) == 2).all()
    assert (y.detach()[:, 0, 1] == 0).all()  # the masked item is never chosen
    (y * torch.arange(4.0)).sum().backward()
    assert torch.isfinite(logits.grad).all()
    soft = RelaxedTopK(logits, 2, temperature).rsample((50,))
    assert torch.isfinite(soft).all() and (soft >= 0).all()
    torch.testing.assert_close(soft.sum(-1), torch.full((50, 2), 2.0))


def test_shapes_expand_and_log_prob_refusal() -> None:
    q = RelaxedTopK(torch.zeros(3, 6), 2, 0.5)
    assert q.batch_shape == (3,) and q.event_shape == (6,)
    assert q.expand((4, 3)).rsample((2,)).shape == (2, 4, 3, 6)
    with pytest.raises(NotImplementedError, match="subset_log_prob"):
        q.log_prob(torch.zeros(3, 6))


@pytest.mark.parametrize(
    ("k", "temperature", "match"),
    [(0, 1.0, "k must be an int"), (7, 1.0, "k must be an int"), (2.0, 1.0, "k must be an int"),
     (2, 0.0, "temperature must be positive")],
)
def test_bad_arguments_name_the_argument(k: int, temperature: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RelaxedTopK(torch.zeros(6), k, temperature, validate_args=True)
