"""The mean-field Gaussian layer every Bayesian layer shares, and its three gradient estimators.

A layer computes ``y = op(x, W) + b`` with independent Gaussian weights
``W_ij ~ N(mu_ij, sigma_ij^2)``, ``sigma = softplus(rho)`` (Blundell et al. 2015), and a bias
``b ~ N(mu_b, sigma_b^2)`` alike. ``op`` is linear in ``W`` (a matrix product or a convolution).
Three Monte Carlo estimators of ``E_q[loss]`` use the same parameters ``(mu, rho)``:

``"reparam"`` (shared-weight reparameterization)
    One ``W = mu + sigma * eps`` per forward pass, shared by every example of the batch. The
    examples' gradients are correlated through the shared ``eps``, so the part of the gradient
    variance caused by the weight noise does not shrink with the batch size.
``"local"`` (local reparameterization; Kingma, Salimans & Welling 2015, "Variational Dropout and
the Local Reparameterization Trick")
    Samples the pre-activations instead of the weights: since ``y`` is linear in the Gaussian
    ``W``, ``y ~ N(op(x, mu) + mu_b, op(x^2, sigma^2) + sigma_b^2)``, drawn independently per
    example (and per output unit). Cost: two ``op`` calls. For convolutions this is exact for
    each output element's marginal but drops the correlation between spatial positions that a
    shared kernel creates.
``"flipout"`` (Wen, Vicol, Ba, Tran & Grosse 2018, "Flipout: Efficient Pseudo-Independent Weight
Perturbations on Mini-Batches")
    One perturbation ``dW = sigma * eps`` per batch, decorrelated per example by random signs:
    ``y_n = op(x_n, mu) + mu_b + r_n * (op(x_n * s_n, dW) + db)`` with ``r_n, s_n`` uniform on
    ``{-1, +1}``. As ``dW`` is symmetric about 0, ``dW * (r s^T)`` has the law of ``dW``, so each
    example sees exactly the right weight distribution, while different examples' perturbations
    are uncorrelated. Cost: two ``op`` calls and two sign draws. The bias perturbation is treated
    as the weight of a constant input (``s = 1``) and flipped by ``r_n`` too.

For a single input all three give the same distribution of ``y`` (Gaussian with the mean and
variance above); they differ in the correlation between examples, hence in gradient variance.
The estimator is a plain attribute, settable at any time: ``layer.estimator = "local"``.

Predicting with the posterior mean (``eval()`` semantics). ``eval()`` does **not** stop the
sampling: a Bayesian layer in eval mode still draws weights, as MC dropout and the usual Bayesian
layer libraries do, because ``model.eval()`` is what one calls before Monte Carlo prediction
(:func:`reparam.nn.predict_samples`) to freeze dropout and batch-norm statistics, and a model that
silently turned deterministic in eval mode would return ``S`` identical "posterior draws" and
zero epistemic uncertainty. The deterministic network ``y = op(x, mu) + mu_b`` (a cheap
point prediction, one forward pass) is asked for explicitly, either per layer::

    layer.use_mean(True)        # every forward uses weight_mu / bias_mu; use_mean(False) undoes
    layer.posterior_mean        # the current setting (False by default)

or for every Bayesian layer of a model, restored on exit::

    with reparam.nn.posterior_mean(model):
        y = model(x)            # deterministic

Note that the mean network's output is not the posterior predictive mean ``E_q[f(x; W)]`` for a
nonlinear network; it is the usual cheap approximation of it.

Device and dtype. Layers take ``device=`` and ``dtype=`` like ``nn.Linear`` and create their
parameters there (no CPU allocation first); the prior is moved alongside. Forward passes draw
their noise with ``*_like`` from the parameters and the input, so a layer runs wherever its
parameters are, with no host synchronisation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution

from reparam.nn.priors import Prior, as_prior

EstimatorName = Literal["reparam", "local", "flipout"]
ESTIMATORS: tuple[str, ...] = ("reparam", "local", "flipout")
_VARIANCE_FLOOR = 1e-30


def inverse_softplus(value: float) -> float:
    """``rho`` with ``softplus(rho) = value`` (stable for small and large ``value``)."""
    return value + math.log(-math.expm1(-value))


def check_estimator(estimator: object) -> EstimatorName:
    if estimator not in ESTIMATORS:
        raise ValueError(
            f"estimator must be one of {ESTIMATORS}, got {estimator!r}: 'reparam' samples one weight "
            "matrix per batch, 'local' samples pre-activations per example, 'flipout' decorrelates "
            "one weight sample per example with random signs."
        )
    return cast(EstimatorName, estimator)  # one of ESTIMATORS, checked above


def random_sign(like: Tensor) -> Tensor:
    """Independent uniform ``{-1, +1}`` entries shaped like ``like`` (from random bits: never 0,
    unlike ``uniform(-1, 1).sign()``, which returns 0 with probability 2^-24 per entry)."""
    bits = torch.randint(0, 2, like.shape, dtype=like.dtype, device=like.device)
    return bits.mul_(2.0).sub_(1.0)


def standard_normal(like: Tensor) -> Tensor:
    """``N(0, 1)`` entries shaped like ``like``, drawn in logical (row-major) order whatever
    ``like``'s memory layout. ``randn_like`` follows the layout, which ``torch.compile``'s
    inductor may choose differently from eager (a convolution's output, say): drawing by shape
    makes the same seed give the same noise, compiled or not."""
    return torch.randn(like.shape, dtype=like.dtype, device=like.device)


class BayesianModule(nn.Module):
    """Marker base class: a module whose ``kl_divergence()`` enters the ELBO. Subclass it for
    your own Bayesian modules and :func:`reparam.nn.kl_divergence` will find them."""

    def kl_divergence(self) -> Tensor:
        raise NotImplementedError


class BayesLayer(BayesianModule):
    """Mean-field Gaussian weights ``N(mu, softplus(rho)^2)`` and a prior; subclasses define
    ``_op(x, weight, bias)`` (linear in ``weight``) and ``_check_input(x)``.

    Args:
        weight_shape: shape of ``W``.
        fan_in: inputs per output unit (sets the initial spread of the means).
        bias: learn a Bayesian bias.
        estimator: ``"reparam"``, ``"local"`` or ``"flipout"``.
        prior: a :class:`~reparam.nn.priors.Prior` or any elementwise ``torch.distributions``
            object (wrapped in :class:`~reparam.nn.priors.DistributionPrior`); default
            ``NormalPrior(0, 1)``.
        init_scale: initial posterior standard deviation ``sigma``; default ``0.1 / sqrt(fan_in)``,
            a tenth of the spread of the initial means, so training starts close to a
            deterministic network with the usual (Kaiming-uniform) initialisation.
        device, dtype: where and in what precision the parameters are created (as for
            ``nn.Linear``); the prior is moved there too.
    """

    def __init__(
        self,
        weight_shape: tuple[int, ...],
        fan_in: int,
        bias: bool,
        estimator: EstimatorName,
        prior: Prior | Distribution | None,
        init_scale: float | None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        prior_module = as_prior(prior)
        if init_scale is None:
            init_scale = 0.1 / math.sqrt(fan_in)
        if not (isinstance(init_scale, (int, float)) and math.isfinite(init_scale) and init_scale > 0):
            raise ValueError(f"init_scale must be a positive finite standard deviation, got {init_scale!r}.")
        self.estimator = estimator
        self.fan_in = int(fan_in)
        self.init_scale = float(init_scale)
        if device is not None or dtype is not None:
            prior_module.to(device=device, dtype=dtype)
        self.prior = prior_module
        self.posterior_mean = False
        # (weight noise, bias noise, parameter versions) of the last forward, for priors whose
        # Monte Carlo KL uses the layer's own sample ``mu + sigma * noise``; None when there is
        # none. The noise (no graph) is kept rather than the sample, and the sample rebuilt from
        # the current parameters, so that a compiled step needs no tensor from an earlier graph;
        # versions are None when kept inside torch.compile (dynamo cannot read ``_version``).
        self._sample: tuple[Tensor, Tensor | None, tuple[int, ...] | None] | None = None
        self.weight_mu = nn.Parameter(torch.empty(weight_shape, device=device, dtype=dtype))
        self.weight_rho = nn.Parameter(torch.empty(weight_shape, device=device, dtype=dtype))
        if bias:
            shape = (weight_shape[0],)
            self.bias_mu: nn.Parameter | None = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
            self.bias_rho: nn.Parameter | None = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_mu", None)
            self.register_parameter("bias_rho", None)
        self.reset_parameters()

    # -- configuration -------------------------------------------------------------------------
    @property
    def estimator(self) -> EstimatorName:
        return self._estimator

    @estimator.setter
    def estimator(self, value: EstimatorName) -> None:
        self._estimator = check_estimator(value)

    def use_mean(self, enabled: bool = True) -> BayesLayer:
        """Predict with the posterior mean weights (``True``) or sample them (``False``, the
        default, in train and eval mode alike; see the module docstring). Returns the layer."""
        if not isinstance(enabled, bool):
            raise TypeError(f"use_mean takes True or False, got {enabled!r}.")
        self.posterior_mean = enabled
        return self

    def reset_parameters(self) -> None:
        """Means ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (torch's default for ``nn.Linear``/``Conv``),
        ``rho = softplus^{-1}(init_scale)``."""
        bound = 1.0 / math.sqrt(self.fan_in)
        rho = inverse_softplus(self.init_scale)
        with torch.no_grad():
            self.weight_mu.uniform_(-bound, bound)
            self.weight_rho.fill_(rho)
            if self.bias_mu is not None and self.bias_rho is not None:
                self.bias_mu.uniform_(-bound, bound)
                self.bias_rho.fill_(rho)

    @torch.no_grad()
    def load_means(self, weight: Tensor, bias: Tensor | None) -> None:
        """Set the posterior means to a trained deterministic layer's weights."""
        if tuple(weight.shape) != tuple(self.weight_mu.shape):
            raise ValueError(
                f"weight of shape {tuple(weight.shape)} does not fit {tuple(self.weight_mu.shape)}."
            )
        self.weight_mu.copy_(weight)
        if self.bias_mu is not None and bias is not None:
            self.bias_mu.copy_(bias)

    # -- posterior -----------------------------------------------------------------------------
    @property
    def weight_sigma(self) -> Tensor:
        return F.softplus(self.weight_rho)

    @property
    def bias_sigma(self) -> Tensor | None:
        return None if self.bias_rho is None else F.softplus(self.bias_rho)

    def kl_divergence(self) -> Tensor:
        """``KL(q(W, b) || p(W, b))``, summed over every weight (analytic or Monte Carlo, as the
        prior allows; a Monte Carlo prior that ``uses_weight_sample`` gets the weight sample of
        the last forward pass, once, see :mod:`reparam.nn.priors`)."""
        if not self.prior.uses_weight_sample:
            kl = self.prior.kl(self.weight_mu, self.weight_sigma)
            if self.bias_mu is not None and self.bias_rho is not None:
                kl = kl + self.prior.kl(self.bias_mu, F.softplus(self.bias_rho))
            return kl
        weight_sample, bias_sample = self._take_sample()
        kl = self.prior.kl_with_sample(self.weight_mu, self.weight_sigma, weight_sample)
        if self.bias_mu is not None and self.bias_rho is not None:
            kl = kl + self.prior.kl_with_sample(self.bias_mu, F.softplus(self.bias_rho), bias_sample)
        return kl

    def _versions(self) -> tuple[int, ...]:
        params = (self.weight_mu, self.weight_rho, self.bias_mu, self.bias_rho)
        return tuple(p._version for p in params if p is not None)

    def __getstate__(self) -> dict[str, object]:
        # the kept noise belongs to a past forward pass: never copied or pickled
        state = dict(self.__dict__)
        state["_sample"] = None
        return state

    def _keep_sample(self, weight_noise: Tensor, bias_noise: Tensor | None) -> None:
        """Keep the standard-normal noise of this forward's weight sample for the KL."""
        if self.prior.uses_weight_sample and torch.is_grad_enabled():
            versions = None if torch.compiler.is_compiling() else self._versions()
            self._sample = (weight_noise, bias_noise, versions)

    def _take_sample(self) -> tuple[Tensor | None, Tensor | None]:
        """The last forward pass's sample ``mu + sigma * noise``, if it is still valid (drawn
        under autograd from the current parameter values); consumed, so a second KL call draws
        afresh. Under ``torch.compile`` the parameter versions cannot be read, so the check is
        skipped there (in a compiled training step the forward and the KL see the same
        parameters) and the kept noise is applied to the current parameters."""
        stored, self._sample = self._sample, None
        if stored is None or not torch.is_grad_enabled():
            return None, None
        weight_noise, bias_noise, versions = stored
        if not torch.compiler.is_compiling() and versions is not None and versions != self._versions():
            return None, None
        weight = self.weight_mu + F.softplus(self.weight_rho) * weight_noise
        bias = None
        if bias_noise is not None and self.bias_mu is not None and self.bias_rho is not None:
            bias = self.bias_mu + F.softplus(self.bias_rho) * bias_noise
        return weight, bias

    # -- forward -------------------------------------------------------------------------------
    def _op(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        raise NotImplementedError

    def _check_input(self, x: Tensor) -> None:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if self.posterior_mean:
            return self._op(x, self.weight_mu, self.bias_mu)
        w_sigma = F.softplus(self.weight_rho)
        b_sigma = None if self.bias_rho is None else F.softplus(self.bias_rho)
        if self._estimator == "reparam":
            w_noise = standard_normal(w_sigma)
            weight = self.weight_mu + w_sigma * w_noise
            bias = b_noise = None
            if self.bias_mu is not None and b_sigma is not None:
                b_noise = standard_normal(b_sigma)
                bias = self.bias_mu + b_sigma * b_noise
            self._keep_sample(w_noise, b_noise)
            return self._op(x, weight, bias)
        mean = self._op(x, self.weight_mu, self.bias_mu)
        if self._estimator == "local":
            var = self._op(x * x, w_sigma * w_sigma, None if b_sigma is None else b_sigma * b_sigma)
            return mean + torch.sqrt(var.clamp_min(_VARIANCE_FLOOR)) * standard_normal(mean)
        w_noise = standard_normal(w_sigma)
        b_noise = None if b_sigma is None else standard_normal(b_sigma)
        delta_w = w_sigma * w_noise
        delta_b = None if b_sigma is None or b_noise is None else b_sigma * b_noise
        self._keep_sample(w_noise, b_noise)  # the sample is mu + delta, before the sign flips
        perturbation = self._op(x * random_sign(x), delta_w, delta_b)
        return mean + perturbation * random_sign(mean)


@contextmanager
def posterior_mean(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Within the block every :class:`BayesLayer` of ``model`` predicts with its posterior mean
    weights (``enabled=False``: samples); each layer's previous setting is restored on exit.

    Example::

        with reparam.nn.posterior_mean(model):
            point_prediction = model(x)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}.")
    layers = [m for m in model.modules() if isinstance(m, BayesLayer)]
    previous = [layer.posterior_mean for layer in layers]
    try:
        for layer in layers:
            layer.use_mean(enabled)
        yield model
    finally:
        for layer, value in zip(layers, previous, strict=True):
            layer.posterior_mean = value
