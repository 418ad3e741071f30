"""Monte Carlo prediction with a Bayesian network and the split of its uncertainty.

Classification (Houlsby et al. 2011; Depeweg et al. 2018), with ``p_s = softmax(f(x; w_s))`` for
``S`` posterior draws ``w_s``:

* predictive mean      ``p_bar = (1/S) sum_s p_s``
* predictive entropy   ``H[p_bar]``                              (total uncertainty)
* expected entropy     ``(1/S) sum_s H[p_s]``                    (aleatoric)
* mutual information   ``H[p_bar] - (1/S) sum_s H[p_s]``         (epistemic, ``>= 0``:
  the information about ``w`` that observing ``y`` would give)

Regression with a heteroscedastic Gaussian head (Kendall & Gal 2017), ``(mu_s, sigma_s)`` per
draw: the predictive is the mixture ``(1/S) sum_s N(mu_s, sigma_s^2)``, whose variance splits by
the law of total variance into

* aleatoric  ``(1/S) sum_s sigma_s^2``       (noise the model expects in the data)
* epistemic  ``(1/S) sum_s (mu_s - mu_bar)^2`` (disagreement between posterior draws).

Every estimator gives the same per-example predictive (each example's draws are draws of ``w``
from ``q``); ``"reparam"`` shares one draw across the batch, the others draw per example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from reparam.nn.likelihoods import _HALF_LOG_TWO_PI, gaussian_head


def _check_samples(num_samples: int) -> int:
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}.")
    return num_samples


@torch.no_grad()
def predict_samples(
    model: nn.Module, x: Tensor, num_samples: int = 32, batch_size: int | None = None
) -> Tensor:
    """``num_samples`` stochastic forward passes, stacked: ``(num_samples, *model(x).shape)``.

    Runs under ``torch.no_grad`` in the model's current mode (Bayesian layers sample in both
    train and eval mode). ``batch_size`` splits ``x`` into chunks to bound memory."""
    _check_samples(num_samples)
    chunks = [x] if batch_size is None else list(torch.split(x, batch_size))
    draws = [torch.cat([model(chunk) for chunk in chunks]) for _ in range(num_samples)]
    return torch.stack(draws)


def _entropy(probs: Tensor) -> Tensor:
    return -(probs * torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny))).sum(-1)


@dataclass(frozen=True)
class ClassificationPrediction:
    """Per-example predictive probabilities ``(N, C)`` and uncertainties ``(N,)`` in nats."""

    probs: Tensor
    predictive_entropy: Tensor
    expected_entropy: Tensor
    mutual_information: Tensor


def classification_uncertainty(logits: Tensor) -> ClassificationPrediction:
    """Split the uncertainty of ``S`` draws of logits shaped ``(S, N, C)`` (see module doc)."""
    if logits.dim() != 3:
        raise ValueError(
            f"logits must be shaped (num_samples, N, C), got {tuple(logits.shape)}; use predict_samples."
        )
    probs = torch.softmax(logits, dim=-1)
    mean = probs.mean(0)
    total = _entropy(mean)
    expected = _entropy(probs).mean(0)
    mutual = (total - expected).clamp_min(0.0)  # >= 0 by Jensen; clamp rounding error only
    return ClassificationPrediction(mean, total, expected, mutual)


@dataclass(frozen=True)
class RegressionPrediction:
    """Per-example predictive mean and variances ``(N,)``; ``total = aleatoric + epistemic``."""

    mean: Tensor
    aleatoric_variance: Tensor
    epistemic_variance: Tensor
    means: Tensor
    scales: Tensor

    @property
    def total_variance(self) -> Tensor:
        return self.aleatoric_variance + self.epistemic_variance

    def log_likelihood(self, target: Tensor) -> Tensor:
        """``log (1/S) sum_s N(y; mu_s, sigma_s^2)`` per example (the mixture predictive)."""
        target = target.reshape(self.mean.shape)
        z = (target - self.means) / self.scales
        log_components = -0.5 * z * z - torch.log(self.scales) - _HALF_LOG_TWO_PI
        return torch.logsumexp(log_components, dim=0) - math.log(self.means.shape[0])


def regression_uncertainty(outputs: Tensor, min_scale: float = 1e-3) -> RegressionPrediction:
    """Aleatoric/epistemic split of ``S`` heteroscedastic outputs shaped ``(S, N, 2)``."""
    if outputs.dim() != 3:
        raise ValueError(
            f"outputs must be shaped (num_samples, N, 2), got {tuple(outputs.shape)}; use predict_samples."
        )
    means, scales = gaussian_head(outputs, min_scale)
    mean = means.mean(0)
    aleatoric = (scales * scales).mean(0)
    epistemic = ((means - mean) ** 2).mean(0)
    return RegressionPrediction(mean, aleatoric, epistemic, means, scales)
