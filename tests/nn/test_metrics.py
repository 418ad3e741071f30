"""Accuracy, NLL and expected calibration error against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from seeds import seeded

from reparam.nn import accuracy, calibration_bins, expected_calibration_error, negative_log_likelihood


def test_accuracy_and_nll_by_hand() -> None:
    probs = torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 1])
    assert math.isclose(accuracy(probs, labels), 2 / 3)
    assert math.isclose(
        negative_log_likelihood(probs, labels), -(math.log(0.7) + math.log(0.8) + math.log(0.4)) / 3
    )


def test_nll_of_zero_probability_is_finite() -> None:
    assert math.isfinite(negative_log_likelihood(torch.tensor([[1.0, 0.0]]), torch.tensor([1])))


def test_ece_by_hand() -> None:
    # 4 bins of width 0.25. Confidences 0.6, 0.7 (bin (0.5, 0.75]), 0.9, 0.95 (bin (0.75, 1]).
    # bin 3: mean confidence 0.65, accuracy 1/2 -> gap 0.15; bin 4: 0.925, accuracy 1 -> 0.075.
    # ECE = (2/4) 0.15 + (2/4) 0.075 = 0.1125.
    probs = torch.tensor([[0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.05, 0.95]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1])
    assert math.isclose(expected_calibration_error(probs, labels, num_bins=4), 0.1125)
    bins = calibration_bins(probs, labels, num_bins=4)
    assert bins.counts.tolist() == [0, 0, 2, 2]


def test_calibrated_predictions_have_small_ece() -> None:
    # Labels drawn from the predicted probabilities are calibrated by construction: the ECE is a
    # sum of bin-wise sampling errors, O(sqrt(bins / N)); with N = 20000, 10 bins it is < 0.03.
    g = torch.Generator().manual_seed(seeded(0))
    probs = torch.softmax(2 * torch.randn(20000, 4, generator=g), -1)
    labels = torch.multinomial(probs, 1, generator=g).squeeze(1)
    assert expected_calibration_error(probs, labels, num_bins=10) < 0.03
    overconfident = torch.softmax(10 * torch.log(probs), -1)
    assert expected_calibration_error(overconfident, labels, num_bins=10) > 0.1


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        accuracy(torch.rand(3), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="empty"):
        expected_calibration_error(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="num_bins"):
        calibration_bins(torch.rand(3, 2), torch.tensor([0, 1, 0]), num_bins=0)
