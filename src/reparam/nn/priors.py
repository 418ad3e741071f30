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
* :class:`DistributionPrior`: any elementwise ``torch.distributions`` object (``Laplace(0, 1)``,
  ``StudentT(3.0)``, ``MixtureSameFamily(...)``, ...). Layers wrap a distribution passed as
  ``prior=`` in it automatically (:func:`as_prior`). The KL is
  ``torch.distributions.kl_divergence(Normal(mu, sigma), p)`` when torch registers a closed form
  for the pair of types, else the Monte Carlo estimate

      KL ~= -H[q] - sum_i log p(w_i),      w = mu + sigma * eps,

  with ``w`` the weight sample the layer drew in its last forward pass (``estimator="reparam"``:
  the sampled matrix; ``"flipout"``: ``mu + dW`` before the sign flips), as in Blundell et al.
  2015, section 3.2 (one sample shared by the likelihood and the KL, unbiased since the sample is
  a draw from ``q``). Without such a sample (``"local"``, no forward pass yet under autograd, or
  the parameters changed since) a fresh ``eps`` is drawn. The exact Gaussian entropy leaves only
  the cross-entropy to be sampled.

Priors are modules, so ``layer.to(device, dtype)`` moves them with the layer; a
``DistributionPrior`` moves every tensor its distribution holds.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Normal, Transform, constraints

_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return value


def gaussian_entropy(scale: Tensor) -> Tensor:
    """``sum_i H[N(., scale_i^2)] = sum_i (1/2 log(2 pi e) + log scale_i)``."""
    return (0.5 + _HALF_LOG_TWO_PI + torch.log(scale)).sum()


def _scalar_repr(value: Tensor) -> str:
    """``value`` formatted with ``:g``; ``?`` for tensors without data (the ``meta`` device)."""
    return "?" if value.is_meta else f"{float(value):g}"


class Prior(nn.Module):
    """Base class: ``log_prob(w)`` (elementwise) and ``kl(loc, scale)`` (summed).

    A prior that sets ``uses_weight_sample = True`` is called as
    ``kl_with_sample(loc, scale, sample)`` with the weight sample of the layer's last forward pass
    (``None`` when there is none)."""

    uses_weight_sample: bool = False

    def log_prob(self, weight: Tensor) -> Tensor:
        raise NotImplementedError

    def kl(self, loc: Tensor, scale: Tensor) -> Tensor:
        raise NotImplementedError

    def kl_with_sample(self, loc: Tensor, scale: Tensor, sample: Tensor | None) -> Tensor:
        """``kl(loc, scale)``, for priors whose estimate can use a given sample ``w ~ q``."""
        return self.kl(loc, scale)


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
        return (
            f"loc={_scalar_repr(self.loc)}, scale={_scalar_repr(self.scale)}, learnable={self.learnable}"
        )


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
        s1, s2 = (_scalar_repr(s) for s in self.scales)
        return f"mixture_weight={_scalar_repr(self.mixture_weight)}, scale1={s1}, scale2={s2}"


KLMode = Literal["auto", "analytic", "mc"]


def _map_tensors(obj: object, fn: Callable[[Tensor], Tensor], seen: set[int]) -> None:
    """Apply ``fn`` to every tensor attribute of a distribution or transform, recursively (base
    distributions, mixture components, transforms and lists of them)."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    for name, value in list(vars(obj).items()):
        if isinstance(value, Tensor):
            setattr(obj, name, fn(value))
        elif isinstance(value, (Distribution, Transform)):
            _map_tensors(value, fn, seen)
        elif isinstance(value, (list, tuple)):
            items = [fn(v) if isinstance(v, Tensor) else v for v in value]
            for v in items:
                if isinstance(v, (Distribution, Transform)):
                    _map_tensors(v, fn, seen)
            setattr(obj, name, type(value)(items))


def _closed_form(posterior: type, prior: type) -> Callable[[Distribution, Distribution], Tensor] | None:
    """The function torch's KL registry holds for ``(posterior, prior)`` (or a parent pair), or
    ``None``. Looked up once, when the prior is built: ``kl_divergence``'s own lookup (a
    ``min`` over the registry) cannot be traced by ``torch.compile``."""
    fn = torch.distributions.kl._dispatch_kl(posterior, prior)
    return None if fn is NotImplemented else fn


class DistributionPrior(Prior):
    """An elementwise prior given as any ``torch.distributions.Distribution``.

    The distribution must have an empty ``event_shape`` and a ``batch_shape`` that broadcasts
    against every weight tensor it is used for (a scalar-parameter distribution broadcasts to
    all). ``kl`` is the closed form ``sum_i KL(N(mu_i, sigma_i^2) || p)`` when
    ``torch.distributions.kl_divergence`` has one registered for ``(Normal, type(p))``, else the
    Monte Carlo estimate of the module docstring.

    Args:
        distribution: the prior ``p``, e.g. ``torch.distributions.Laplace(0.0, 0.1)``. It is
            deep-copied; ``prior.to(device, dtype)`` (or moving the layer) moves its tensors.
        kl: ``"auto"`` (closed form when registered, else Monte Carlo), ``"analytic"`` (raise if
            there is no closed form) or ``"mc"`` (always the Monte Carlo estimate).

    Its ``log_prob`` runs without argument validation (the weights it scores are real-valued
    Gaussian draws), so the KL reads no value on the host. Not saved in ``state_dict`` and not
    learnable (for a learnable prior use
    :class:`NormalPrior` with ``learnable=True``).

    Example::

        layer = BayesLinear(20, 10, prior=torch.distributions.Laplace(0.0, 0.1))   # wrapped
        layer = BayesLinear(20, 10, prior=DistributionPrior(StudentT(3.0), kl="mc"))
    """

    uses_weight_sample = True

    def __init__(self, distribution: Distribution, kl: KLMode = "auto") -> None:
        super().__init__()
        if not isinstance(distribution, Distribution):
            raise TypeError(
                f"distribution must be a torch.distributions.Distribution, got {type(distribution).__name__}."
            )
        if distribution.event_shape != torch.Size():
            raise ValueError(
                f"a weight prior is elementwise: its event_shape must be (), got "
                f"{tuple(distribution.event_shape)}; use a scalar-parameter distribution (it broadcasts "
                "to every weight) or Independent(...).base_dist."
            )
        if kl not in ("auto", "analytic", "mc"):
            raise ValueError(f"kl must be 'auto', 'analytic' or 'mc', got {kl!r}.")
        closed_form = _closed_form(Normal, type(distribution))
        closed = closed_form is not None
        if kl == "analytic" and not closed:
            raise ValueError(
                f"torch.distributions has no closed-form KL(Normal || {type(distribution).__name__}); "
                "pass kl='auto' or kl='mc' for the Monte Carlo estimate."
            )
        support = getattr(distribution, "support", constraints.real)
        while hasattr(support, "base_constraint"):  # mixtures, independent
            support = support.base_constraint
        if type(support) is not type(constraints.real):
            raise ValueError(
                f"the prior's support is {support}, but a Gaussian posterior puts weights on the whole "
                "real line (infinite KL); use a prior supported on the reals (Normal, Laplace, StudentT, "
                "Cauchy, a MixtureSameFamily of these, ...)."
            )
        self.distribution = copy.deepcopy(distribution)
        # the values it scores are Gaussian draws (real by construction): validating them would
        # read a tensor on the host at every KL evaluation
        self.distribution._validate_args = False
        self.kl_mode: KLMode = kl
        self.analytic = closed and kl != "mc"
        self._closed_form = closed_form if self.analytic else None

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> DistributionPrior:
        # Module.to/cuda/double reach buffers and parameters only; move the distribution too.
        _map_tensors(self.distribution, fn, set())
        super()._apply(fn, recurse)
        return self

    def log_prob(self, weight: Tensor) -> Tensor:
        return self.distribution.log_prob(weight)

    def kl(self, loc: Tensor, scale: Tensor) -> Tensor:
        return self.kl_with_sample(loc, scale, None)

    def kl_with_sample(self, loc: Tensor, scale: Tensor, sample: Tensor | None) -> Tensor:
        """Closed form, or ``-H[q] - sum_i log p(w_i)`` at ``sample`` (a fresh draw if ``None``)."""
        self._check_shape(loc)
        if self._closed_form is not None:  # what torch.distributions.kl_divergence would call
            posterior = Normal(loc, scale, validate_args=False)
            return self._closed_form(posterior, self.distribution).sum()
        if sample is None:
            sample = loc + scale * torch.randn_like(loc)
        return -self.distribution.log_prob(sample).sum() - gaussian_entropy(scale)

    def _check_shape(self, loc: Tensor) -> None:
        batch = self.distribution.batch_shape
        try:
            torch.broadcast_shapes(batch, loc.shape)
        except RuntimeError:
            raise ValueError(
                f"the prior's batch_shape {tuple(batch)} does not broadcast against the weights of shape "
                f"{tuple(loc.shape)}; use scalar parameters (e.g. Laplace(0.0, 0.1)) so that one prior "
                "covers the weights and the bias."
            ) from None

    def extra_repr(self) -> str:
        return f"{self.distribution!r}, kl={'analytic' if self.analytic else 'mc'!r}"


def as_prior(prior: Prior | Distribution | None) -> Prior:
    """``prior`` as a :class:`Prior`: ``None`` -> ``NormalPrior(0, 1)``, a ``torch.distributions``
    object -> :class:`DistributionPrior`, a :class:`Prior` unchanged."""
    if prior is None:
        return NormalPrior(0.0, 1.0)
    if isinstance(prior, Prior):
        return prior
    if isinstance(prior, Distribution):
        return DistributionPrior(prior)
    raise TypeError(
        f"prior must be a reparam.nn.Prior (e.g. NormalPrior(0.0, 1.0)) or a torch.distributions "
        f"object (e.g. torch.distributions.Laplace(0.0, 0.1)), got {type(prior).__name__}."
    )
