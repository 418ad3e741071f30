"""Priors over the weights of a Bayesian layer, and the KL from a mean-field Gaussian posterior.

Every prior is an ``nn.Module`` (so a learnable prior's parameters are found by ``parameters()``,
saved by ``state_dict`` and moved by ``to()``) with one method the layers call::

    prior.kl(loc, scale) = sum_i KL( N(loc_i, scale_i^2) || p )

* :class:`NormalPrior`: ``p = N(m, s^2)`` elementwise, fixed or learnable (empirical Bayes);
  the KL is analytic.
* :class:`ScaleMixturePrior`: ``p = pi N(0, s1^2) + (1 - pi) N(0, s2^2)`` (Blundell et al. 2015,
  "Weight Uncertainty in Neural Networks", eq. 7). No closed form exists, so the KL is a Monte
  Carlo estimate ``KL = -H[q] - E_q[log p(w)]`` with the Gaussian entropy ``H[q]`` exact and only
  the cross-entropy term sampled (pathwise, so its gradient is the reparameterization gradient).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return value


def gaussian_entropy(scale: Tensor) -> Tensor:
    """``sum_i H[N(., scale_i^2)] = sum_i (1/2 log(2 pi e) + log scale_i)``."""
    return (0.5 + _HALF_LOG_TWO_PI + torch.log(scale)).sum()


class Prior(nn.Module):
    """Base class: ``log_prob(w)`` (elementwise) and ``kl(loc, scale)`` (summed)."""

    def log_prob(self, weight: Tensor) -> Tensor:
        raise NotImplementedError

    def kl(self, loc: Tensor, scale: Tensor) -> Tensor:
        raise NotImplementedError


class NormalPrior(Prior):
    """Elementwise ``N(loc, scale^2)`` prior with the analytic KL

    ``KL(N(mu, sigma^2) || N(m, s^2)) = log(s / sigma) + (sigma^2 + (mu - m)^2) / (2 s^2) - 1/2``.

    Args:
        loc: prior mean ``m``.
        scale: prior standard deviation ``s > 0``.
        learnable: make ``loc`` and ``log_scale`` parameters (one scalar each), fitted jointly with
            the posterior by the ELBO (type-II maximum likelihood / empirical Bayes).
    """

    def __init__(self, loc: float = 0.0, scale: float = 1.0, learnable: bool = False) -> None:
        super().__init__()
        scale = _positive("scale", scale)
        if not math.isfinite(float(loc)):
            raise ValueError(f"loc must be finite, got {loc!r}.")
        loc_tensor = torch.tensor(float(loc))
        log_scale = torch.tensor(math.log(scale))
        self.learnable = bool(learnable)
        if self.learnable:
            self.loc = nn.Parameter(loc_tensor)
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("loc", loc_tensor)
            self.register_buffer("log_scale", log_scale)

    @property
    def scale(self) -> Tensor:
        return self.log_scale.exp()

    def log_prob(self, weight: Tensor) -> Tensor:
        z = (weight - self.loc) / self.scale
        return -0.5 * z * z - self.log_scale - _HALF_LOG_TWO_PI

    def kl(self, loc: Tensor, scale: Tensor) -> Tensor:
        prior_var = torch.exp(2.0 * self.log_scale)
        terms = self.log_scale - torch.log(scale) + (scale * scale + (loc - self.loc) ** 2) / (2 * prior_var)
        return (terms - 0.5).sum()

    def extra_repr(self) -> str:
        return f"loc={self.loc.item():g}, scale={self.scale.item():g}, learnable={self.learnable}"


class ScaleMixturePrior(Prior):
    """Scale mixture of two zero-mean Normals, ``pi N(0, s1^2) + (1 - pi) N(0, s2^2)``
    (Blundell et al. 2015): a heavy-tailed, spike-and-slab-like prior.

    The KL has no closed form; ``kl`` returns the unbiased estimate
    ``-H[q] - (1/S) sum_s sum_i log p(mu_i + sigma_i eps_si)`` with ``S = num_samples`` fresh
    standard-normal draws ``eps``.

    Args:
        mixture_weight: ``pi`` in ``(0, 1)``.
        scale1, scale2: the two standard deviations (typically one wide, one narrow).
        num_samples: Monte Carlo samples per KL estimate.
    """

    mixture_weight: Tensor  # buffers, registered in __init__
    scales: Tensor

    def __init__(
        self, mixture_weight: float = 0.5, scale1: float = 1.0, scale2: float = 0.0025, num_samples: int = 1
    ) -> None:
        super().__init__()
        if not 0.0 < float(mixture_weight) < 1.0:
            raise ValueError(f"mixture_weight must lie in (0, 1), got {mixture_weight!r}.")
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples!r}.")
        self.num_samples = int(num_samples)
        self.register_buffer("mixture_weight", torch.tensor(float(mixture_weight)))
        self.register_buffer(
            "scales", torch.tensor([_positive("scale1", scale1), _positive("scale2", scale2)])
        )

    def log_prob(self, weight: Tensor) -> Tensor:
        log_weights = torch.stack([self.mixture_weight.log(), torch.log1p(-self.mixture_weight)])
        shape = (2,) + (1,) * weight.dim()
        scales = self.scales.view(shape)
        z = weight.unsqueeze(0) / scales
        components = -0.5 * z * z - torch.log(scales) - _HALF_LOG_TWO_PI + log_weights.view(shape)
        return torch.logsumexp(components, dim=0)

    def kl(self, loc: Tensor, scale: Tensor) -> Tensor:
        eps = torch.randn((self.num_samples, *loc.shape), dtype=loc.dtype, device=loc.device)
        weight = loc + scale * eps
        cross_entropy = -self.log_prob(weight).sum() / self.num_samples
        return cross_entropy - gaussian_entropy(scale)

    def extra_repr(self) -> str:
        s1, s2 = (float(s) for s in self.scales)
        return f"mixture_weight={float(self.mixture_weight):g}, scale1={s1:g}, scale2={s2:g}"
