r"""The importance-weighted bound (IWAE) and its three gradient estimators.

With :math:`z_1, \dots, z_k \sim q_\phi(z)` drawn by reparameterization, :math:`z_i = g_\phi(\epsilon_i)`,
and log-weights :math:`\log w_i = \log p_\theta(x, z_i) - \log q_\phi(z_i)`,

.. math::
    \mathcal{L}_k = \mathbb{E}\Big[\log \frac1k \sum_{i=1}^k w_i\Big]
    \;\le\; \mathcal{L}_{k+1} \;\le\; \log p_\theta(x),

with :math:`\mathcal{L}_1` the ELBO and :math:`\mathcal{L}_k \to \log p_\theta(x)` as
:math:`k \to \infty` (Burda, Grosse & Salakhutdinov 2016, theorem 1). Write
:math:`\tilde w_i = w_i / \sum_j w_j` for the normalised weights.

Gradient estimators (``gradient=``):

* ``"standard"``: autograd through the estimate,
  :math:`\sum_i \tilde w_i \nabla \log w_i`, where :math:`\nabla_\phi \log w_i` contains the path
  term *and* the score term :math:`-\partial_\phi \log q_\phi(z_i)|_{z_i}`. Unbiased for
  :math:`\nabla \mathcal{L}_k`; its encoder signal-to-noise ratio falls like
  :math:`O(1/\sqrt{k})` (Rainforth et al. 2018).
* ``"stl"``, sticking the landing (Roeder, Wu & Duvenaud 2017): drop the score term, i.e. use
  :math:`\log q_{\text{sg}(\phi)}`. For ``k = 1`` (the ELBO) the dropped term has expectation zero,
  so the estimator is unbiased, and its variance vanishes when :math:`q = p(z \mid x)`. For
  ``k > 1`` the dropped term :math:`\sum_i \tilde w_i \partial_\phi \log q_\phi(z_i)` does *not*
  have expectation zero, so STL is biased for :math:`\nabla_\phi \mathcal{L}_k` (Tucker et al.
  2018, section 4); decoder gradients are unaffected.
* ``"dreg"``, doubly-reparameterized gradients (Tucker, Lawson, Gu & Maddison 2018, eq. 7):
  the score term is rewritten by a second reparameterization, giving

  .. math::
      \nabla_\phi \mathcal{L}_k = \mathbb{E}\Big[\sum_i \tilde w_i^2\,
      \frac{\partial \log w_i}{\partial z_i} \frac{\partial z_i}{\partial \phi}\Big],

  unbiased for :math:`\nabla_\phi \mathcal{L}_k` with an SNR that does not decay with ``k``.
  Parameters of ``log_joint`` (the decoder, :math:`\theta`) get the standard
  :math:`\sum_i \tilde w_i \nabla_\theta \log w_i`.

DReG costs one forward and one backward pass: the surrogate
:math:`\sum_i \text{sg}(\tilde w_i) \log w_i` (with :math:`\log q_{\text{sg}(\phi)}`) gives
:math:`\tilde w_i \nabla_\theta \log w_i` for :math:`\theta`, and a gradient hook on the
samples multiplies what flows back into :math:`z_i` (hence to :math:`\phi`) by another
:math:`\tilde w_i`.

``q`` must not share parameters with ``log_joint`` for STL / DReG (as in a VAE: encoder vs
decoder); ``q``'s parameters are detached in ``log q`` via :func:`reparam.vi.detach_parameters`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.vi.detach import detach_parameters

Gradient = Literal["standard", "stl", "dreg"]
GRADIENTS: tuple[str, ...] = ("standard", "stl", "dreg")
LogJoint = Callable[[Tensor], Tensor]


def _check(q: Distribution, num_samples: int, gradient: str) -> None:
    if not isinstance(q, Distribution):
        raise TypeError(f"q must be a torch.distributions.Distribution, got {type(q).__name__}.")
    if not q.has_rsample:
        raise TypeError(
            f"the IWAE bound needs a reparameterizable q, but {type(q).__name__} has no rsample; "
            "use a Gaussian (or another rsample-able) variational family, or the score-function "
            "ELBO (rp.expect with rp.ScoreFunction())."
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an int >= 1, got {num_samples!r}.")
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}.")


def _log_joint(log_joint: LogJoint, z: Tensor, num_samples: int) -> Tensor:
    value = log_joint(z)
    if not isinstance(value, Tensor) or value.dim() == 0 or value.shape[0] != num_samples:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(
            f"log_joint must return log p(x, z) with the sample dim first, shaped "
            f"({num_samples}, ...), got {shape}; sum event dims inside log_joint, keep dim 0."
        )
    return value


def log_weights(
    log_joint: LogJoint, q: Distribution, num_samples: int, gradient: Gradient = "standard"
) -> Tensor:
    r"""Importance log-weights :math:`\log p(x, z_i) - \log q(z_i)`, shaped ``(num_samples, *batch)``,
    with the gradient path of ``gradient`` (``"standard"`` or ``"stl"``; see the module docstring).

    Their mean over dim 0 is a Monte Carlo ELBO (``"stl"``: the sticking-the-landing ELBO of
    Roeder et al. 2017, unbiased).
    """
    _check(q, num_samples, gradient)
    if gradient == "dreg":
        raise ValueError(
            "log_weights supports gradient='standard' or 'stl'; use iwae_bound(gradient='dreg')."
        )
    z = q.rsample((num_samples,))
    density = q if gradient == "standard" else detach_parameters(q)
    return _log_joint(log_joint, z, num_samples) - density.log_prob(z)


def iwae_bound(
    log_joint: LogJoint,
    q: Distribution,
    num_samples: int = 1,
    gradient: Gradient = "standard",
) -> Tensor:
    r"""Monte Carlo estimate of the IWAE bound :math:`\mathcal{L}_k`, :math:`k` = ``num_samples``.

    Args:
        log_joint: ``z -> log p(x, z)``; receives ``(k, *q.batch_shape, *q.event_shape)`` and
            returns ``(k, *batch)``. May close over a decoder whose parameters get gradients.
        q: the (amortised) variational distribution, reparameterizable, e.g.
            ``Independent(Normal(mu, sigma), 1)`` with batch shape ``(B,)``.
        num_samples: ``k`` importance samples per data point.
        gradient: ``"standard"`` (autograd), ``"stl"`` (Roeder et al. 2017; unbiased only for
            ``k = 1``) or ``"dreg"`` (Tucker et al. 2018; unbiased for every ``k``).

    Returns:
        :math:`\log \frac1k \sum_i w_i` shaped like ``log_joint``'s output without dim 0; its
        value is the same for every ``gradient``, only its gradient differs. Maximise it
        (minimise ``-iwae_bound(...).mean()``).

    Example:
        >>> from torch.distributions import Independent, Normal
        >>> mu = torch.zeros(4, 2, requires_grad=True)  # 4 data points, 2 latents each
        >>> q = Independent(Normal(mu, 1.0), 1)
        >>> prior = Independent(Normal(torch.zeros(2), 1.0), 1)
        >>> x = torch.randn(4, 2)
        >>> log_joint = lambda z: Independent(Normal(z, 1.0), 1).log_prob(x) + prior.log_prob(z)
        >>> bound = rp.vi.iwae_bound(log_joint, q, 5, "dreg")
        >>> (-bound.mean()).backward()

    References:
        Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
        Roeder, Wu & Duvenaud, "Sticking the Landing", NeurIPS 2017.
        Tucker, Lawson, Gu & Maddison, "Doubly Reparameterized Gradient Estimators for Monte
        Carlo Objectives", ICLR 2019.
    """
    _check(q, num_samples, gradient)
    if gradient != "dreg":
        log_w = log_weights(log_joint, q, num_samples, gradient)
        return torch.logsumexp(log_w, dim=0) - math.log(num_samples)
    z = q.rsample((num_samples,))
    log_w = _log_joint(log_joint, z, num_samples) - detach_parameters(q).log_prob(z)
    weights = torch.softmax(log_w.detach(), dim=0)
    if z.requires_grad:
        # Scale the gradient reaching z (and through it phi) by w~_i: w~_i * w~_i * path term.
        scale = weights.reshape(*weights.shape, *([1] * (z.dim() - weights.dim())))
        z.register_hook(lambda grad: grad * scale)
    surrogate = (weights * log_w).sum(0)
    value = torch.logsumexp(log_w.detach(), dim=0) - math.log(num_samples)
    return value + (surrogate - surrogate.detach())
