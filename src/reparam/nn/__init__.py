"""Bayesian neural network layers whose forward returns a plain tensor.

``BayesLinear``, ``BayesConv1d`` and ``BayesConv2d`` hold mean-field Gaussian weights and sample
them with ``estimator="reparam" | "local" | "flipout"`` (switchable on the same parameters);
``kl_divergence(model)`` sums their KL terms; ``ELBOLoss(dataset_size)`` scales the KL for
minibatches; ``bayesianize(model)`` converts an existing network; ``predict_samples`` and the
uncertainty and calibration helpers evaluate the result.

Layers take ``device=``/``dtype=`` like ``nn.Linear``; ``prior=`` takes a :class:`Prior` or any
elementwise ``torch.distributions`` object (closed-form KL when torch registers one, Monte Carlo
otherwise; see :mod:`reparam.nn.priors`). ``eval()`` keeps sampling (Monte Carlo prediction);
predict with the posterior mean weights with ``layer.use_mean(True)`` or
``with posterior_mean(model): ...`` (see :mod:`reparam.nn.base` for why).

Example::

    import torch, reparam.nn as bnn
    model = torch.nn.Sequential(bnn.BayesLinear(64, 100), torch.nn.ReLU(), bnn.BayesLinear(100, 10))
    criterion = bnn.ELBOLoss(dataset_size=1257)
    loss = criterion(model(x), y, model)     # mean NLL + KL / 1257
"""

from reparam.nn.base import ESTIMATORS, BayesianModule, BayesLayer, inverse_softplus, posterior_mean
from reparam.nn.conv import BayesConv1d, BayesConv2d
from reparam.nn.convert import bayesianize
from reparam.nn.kl import bayesian_modules, kl_divergence
from reparam.nn.likelihoods import gaussian_head, heteroscedastic_gaussian_nll
from reparam.nn.linear import BayesLinear
from reparam.nn.loss import ELBOLoss
from reparam.nn.metrics import (
    CalibrationBins,
    accuracy,
    calibration_bins,
    expected_calibration_error,
    negative_log_likelihood,
)
from reparam.nn.predict import (
    ClassificationPrediction,
    RegressionPrediction,
    classification_uncertainty,
    predict_samples,
    regression_uncertainty,
)
from reparam.nn.priors import DistributionPrior, NormalPrior, Prior, ScaleMixturePrior, as_prior
from reparam.nn.reliability import reliability_diagram

__all__ = [
    "ESTIMATORS",
    "BayesConv1d",
    "BayesConv2d",
    "BayesLayer",
    "BayesLinear",
    "BayesianModule",
    "CalibrationBins",
    "ClassificationPrediction",
    "DistributionPrior",
    "ELBOLoss",
    "NormalPrior",
    "Prior",
    "RegressionPrediction",
    "ScaleMixturePrior",
    "accuracy",
    "as_prior",
    "bayesian_modules",
    "bayesianize",
    "calibration_bins",
    "classification_uncertainty",
    "expected_calibration_error",
    "gaussian_head",
    "heteroscedastic_gaussian_nll",
    "inverse_softplus",
    "kl_divergence",
    "negative_log_likelihood",
    "posterior_mean",
    "predict_samples",
    "regression_uncertainty",
    "reliability_diagram",
]
