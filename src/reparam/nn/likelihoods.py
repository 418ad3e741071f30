"""Per-example negative log-likelihoods used by :class:`~reparam.nn.ELBOLoss`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_head(output: Tensor, min_scale: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Split a heteroscedastic regression output ``(..., 2)`` into mean ``output[..., 0]`` and
    standard deviation ``softplus(output[..., 1]) + min_scale`` (positive, bounded away from 0 so
    the likelihood cannot collapse onto one point)."""
    if output.dim() == 0 or output.shape[-1] != 2:
        raise ValueError(
            f"a heteroscedastic Gaussian head needs outputs shaped (..., 2) = (mean, raw scale), got "
            f"{tuple(output.shape)}; give the network's last layer 2 outputs per target."
        )
    return output[..., 0], F.softplus(output[..., 1]) + min_scale


def _regression_target(target: Tensor, mean: Tensor) -> Tensor:
    if target.dim() == mean.dim() + 1 and target.shape[-1] == 1:
        target = target.squeeze(-1)
    if target.shape != mean.shape:
        raise ValueError(
            f"target of shape {tuple(target.shape)} does not match the predicted means {tuple(mean.shape)}."
        )
    return target


def heteroscedastic_gaussian_nll(output: Tensor, target: Tensor, min_scale: float = 1e-3) -> Tensor:
    """``-log N(y; mu(x), sigma(x)^2) = log sigma + (y - mu)^2 / (2 sigma^2) + log(2 pi) / 2`` per
    example, with ``(mu, sigma)`` from :func:`gaussian_head` (Nix & Weigend 1994; Kendall & Gal
    2017 for its use in Bayesian networks). ``sigma(x)`` models the aleatoric noise."""
    mean, scale = gaussian_head(output, min_scale)
    target = _regression_target(target, mean)
    z = (target - mean) / scale
    return torch.log(scale) + 0.5 * z * z + _HALF_LOG_TWO_PI


def categorical_nll(output: Tensor, target: Tensor) -> Tensor:
    """``-log softmax(logits)[y]`` per example."""
    if output.dim() != 2 or target.dim() != 1 or target.shape[0] != output.shape[0]:
        raise ValueError(
            f"categorical likelihood needs logits (N, C) and integer labels (N,), got "
            f"{tuple(output.shape)} and {tuple(target.shape)}."
        )
    return F.cross_entropy(output, target, reduction="none")


def bernoulli_nll(output: Tensor, target: Tensor) -> Tensor:
    """``-log Bernoulli(y; sigmoid(logit))`` summed over all but the batch dim."""
    if output.shape != target.shape:
        raise ValueError(f"logits {tuple(output.shape)} and targets {tuple(target.shape)} must match.")
    nll = F.binary_cross_entropy_with_logits(output, target.to(output.dtype), reduction="none")
    return nll.reshape(nll.shape[0], -1).sum(-1) if nll.dim() > 1 else nll


LIKELIHOODS = {
    "categorical": categorical_nll,
    "gaussian": heteroscedastic_gaussian_nll,
    "bernoulli": bernoulli_nll,
}
