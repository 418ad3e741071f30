"""Classification metrics for predictive probabilities: accuracy, NLL and expected calibration
error (Naeini, Cooper & Hauskrecht 2015; Guo, Pleiss, Sun & Weinberger 2017)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def _check(probs: Tensor, labels: Tensor) -> None:
    if probs.dim() != 2 or labels.dim() != 1 or probs.shape[0] != labels.shape[0]:
        raise ValueError(
            f"probs must be (N, C) and labels (N,), got {tuple(probs.shape)} and {tuple(labels.shape)}."
        )
    if probs.shape[0] == 0:
        raise ValueError("probs and labels are empty; metrics need at least one example.")


def accuracy(probs: Tensor, labels: Tensor) -> float:
    """Fraction of examples whose most probable class is the label."""
    _check(probs, labels)
    return float((probs.argmax(-1) == labels).double().mean())


def negative_log_likelihood(probs: Tensor, labels: Tensor) -> float:
    """Mean ``-log p(y_n)`` in nats (probabilities floored at the dtype's ``tiny``)."""
    _check(probs, labels)
    chosen = probs.gather(1, labels.long().unsqueeze(1)).squeeze(1)
    return float(-torch.log(chosen.double().clamp_min(torch.finfo(probs.dtype).tiny)).mean())


@dataclass(frozen=True)
class CalibrationBins:
    """Equal-width confidence bins: per bin the mean confidence, the accuracy and the count."""

    edges: Tensor
    confidence: Tensor
    accuracy: Tensor
    counts: Tensor

    @property
    def ece(self) -> float:
        """``sum_b (n_b / N) |acc_b - conf_b|``."""
        total = self.counts.sum()
        gaps = (self.accuracy - self.confidence).abs()
        return float((self.counts / total * gaps).sum())


def calibration_bins(probs: Tensor, labels: Tensor, num_bins: int = 15) -> CalibrationBins:
    """Bin examples by confidence ``max_c p_c`` into ``num_bins`` equal-width bins on ``[0, 1]``
    (bin ``b`` holds ``(b/B, (b+1)/B]``); empty bins get confidence = accuracy = 0, weight 0.

    The bins are tensors on ``probs.device``, accumulated in float64 (exact counts; an
    evaluation-time reduction, not a training hot path)."""
    _check(probs, labels)
    if not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"num_bins must be a positive int, got {num_bins!r}.")
    confidence, predicted = probs.double().max(-1)
    correct = (predicted == labels).double()
    index = (torch.ceil(confidence * num_bins).long() - 1).clamp(0, num_bins - 1)
    empty = confidence.new_zeros(num_bins)  # float64, on probs.device
    counts = empty.index_add(0, index, torch.ones_like(confidence))
    conf_sum = empty.index_add(0, index, confidence)
    acc_sum = empty.index_add(0, index, correct)
    safe = counts.clamp_min(1.0)
    edges = torch.linspace(0.0, 1.0, num_bins + 1, dtype=torch.float64, device=probs.device)
    return CalibrationBins(edges, conf_sum / safe, acc_sum / safe, counts)


def expected_calibration_error(probs: Tensor, labels: Tensor, num_bins: int = 15) -> float:
    """ECE: the count-weighted mean gap ``|accuracy - confidence|`` over confidence bins."""
    return calibration_bins(probs, labels, num_bins).ece
