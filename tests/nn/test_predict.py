"""Monte Carlo prediction and the entropy / variance decompositions against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from seeds import seeded
from torch import nn

from reparam.nn import BayesLinear, classification_uncertainty, predict_samples, regression_uncertainty


def _entropy(p: list[float]) -> float:
    return -sum(v * math.log(v) for v in p if v > 0)


def test_classification_split_by_hand() -> None:
    # Two draws for one example: p1 = (0.9, 0.1), p2 = (0.1, 0.9); mean (0.5, 0.5).
    # total = log 2, expected = H(0.9, 0.1), mutual information = log 2 - H(0.9, 0.1).
    logits = torch.log(torch.tensor([[[0.9, 0.1]], [[0.1, 0.9]]], dtype=torch.float64))
    result = classification_uncertainty(logits)
    torch.testing.assert_close(result.probs, torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    assert math.isclose(float(result.predictive_entropy), math.log(2))
    assert math.isclose(float(result.expected_entropy), _entropy([0.9, 0.1]))
    assert math.isclose(float(result.mutual_information), math.log(2) - _entropy([0.9, 0.1]))


def test_agreeing_draws_have_no_epistemic_uncertainty() -> None:
    logits = torch.randn(1, 4, 3).expand(5, 4, 3)
    result = classification_uncertainty(logits)
    torch.testing.assert_close(result.mutual_information, torch.zeros(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(result.predictive_entropy, result.expected_entropy)


def test_extreme_logits_stay_finite() -> None:
    logits = torch.tensor([[[1e4, -1e4]], [[-1e4, 1e4]]])
    result = classification_uncertainty(logits)
    assert all(torch.isfinite(t).all() for t in vars(result).values())
    assert math.isclose(float(result.mutual_information), math.log(2), rel_tol=1e-5)


def test_regression_split_is_the_law_of_total_variance() -> None:
    # Mixture (1/S) sum_s N(mu_s, sigma_s^2): Var = E[sigma^2] + Var[mu] (population variance).
    g = torch.Generator().manual_seed(seeded(0))
    outputs = torch.randn(6, 3, 2, generator=g, dtype=torch.float64)
    result = regression_uncertainty(outputs)
    mu = outputs[..., 0]
    sigma = torch.nn.functional.softplus(outputs[..., 1]) + 1e-3
    second_moment = (mu**2 + sigma**2).mean(0)
    torch.testing.assert_close(result.total_variance, second_moment - mu.mean(0) ** 2)
    torch.testing.assert_close(result.aleatoric_variance, (sigma**2).mean(0))
    torch.testing.assert_close(result.mean, mu.mean(0))
    # the mixture log-density against scipy
    y = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    expected = [
        math.log(sum(stats.norm.pdf(float(y[n]), float(mu[s, n]), float(sigma[s, n])) for s in range(6)) / 6)
        for n in range(3)
    ]
    torch.testing.assert_close(result.log_likelihood(y), torch.tensor(expected, dtype=torch.float64))


def test_predict_samples_shapes_chunks_and_no_grad() -> None:
    model = nn.Sequential(BayesLinear(3, 4), nn.ReLU(), BayesLinear(4, 2, estimator="local"))
    x = torch.randn(10, 3)
    draws = predict_samples(model, x, num_samples=7, batch_size=4)
    assert draws.shape == (7, 10, 2) and not draws.requires_grad
    assert not torch.allclose(draws[0], draws[1])  # distinct posterior draws


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_num_samples(bad: object) -> None:
    with pytest.raises(ValueError, match="num_samples"):
        predict_samples(nn.Sequential(BayesLinear(2, 2)), torch.randn(3, 2), num_samples=bad)  # type: ignore[arg-type]


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="num_samples, N, C"):
        classification_uncertainty(torch.randn(4, 3))
    with pytest.raises(ValueError, match="num_samples, N, 2"):
        regression_uncertainty(torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        regression_uncertainty(torch.randn(4, 3, 3))
