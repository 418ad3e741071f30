"""VIMCO: leave-one-out learning signals for multi-sample objectives."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.estimators.base import (
    CostFn,
    credit_log_prob,
    evaluate,
    finite_log_prob,
    first_order_only,
    log_prob_of_own_samples,
    zero_value,
)


@dataclass(frozen=True)
class VIMCO:
    r"""Gradient of the multi-sample objective :math:`\mathbb{E}\big[\log \frac1K \sum_k e^{f(z_k)}\big]`.

    This estimator targets a *different* objective from the others: ``f`` returns per-sample
    log-weights :math:`f_k = f(z_k)` (for a latent-variable model, :math:`\log p(x, z_k) -
    \log q(z_k \mid x)`), and the surrogate's value is the :math:`K`-sample bound
    :math:`\hat L = \log \frac1K \sum_k e^{f_k}` (``K = num_samples``). The gradient is

    .. math::
        \hat g = \sum_k \big(\hat L - \hat L_{-k}\big) \nabla_\phi \log q(z_k)
               + \sum_k \tilde w_k \nabla_\phi f_k, \qquad
        \hat L_{-k} = \log \frac1K\Big(\sum_{j \ne k} e^{f_j} + e^{\bar f_{-k}}\Big),

    with :math:`\tilde w = \mathrm{softmax}(f)` and :math:`\bar f_{-k}` the mean of the other
    log-weights. Each baseline :math:`\hat L_{-k}` does not depend on :math:`z_k`, so
    :math:`\hat g` is an unbiased gradient of :math:`\mathbb{E}[\hat L]`. To *maximise* the bound
    minimise ``-rp.expect(log_weights, q, rp.VIMCO(), K)``. Costs may be batched
    (``(K, *batch_shape[:k])``); the bound is taken over the sample dim for each batch element.

    Samples whose log-density is not finite contribute no score term, so the value is finite
    whenever the log-weights are. The surrogate is first-order only: its second derivatives
    are not an unbiased Hessian of the bound (use ``ScoreFunction`` for higher orders).

    Needs ``K >= 2``. Cost: ``K`` evaluations of ``f``; ``f`` need not be differentiable in
    ``z``.

    Reference: Mnih & Rezende, "Variational Inference for Monte Carlo Objectives", ICML 2016.
    """

    min_samples: int = 2

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        if num_samples < 2:
            raise ValueError(
                f"VIMCO() needs num_samples >= 2 (the leave-one-out baselines use the other "
                f"samples), got num_samples={num_samples}."
            )
        k = num_samples
        with torch.no_grad():
            z = q.sample((k,))
        log_w = evaluate(f, z, q, k)
        log_q = credit_log_prob(log_prob_of_own_samples(q, z), log_w)
        bound = torch.logsumexp(log_w, 0) - math.log(k)
        with torch.no_grad():
            lw = log_w.detach()
            others = (lw.sum(0, keepdim=True) - lw) / (k - 1)  # mean of the other log-weights
            eye = torch.eye(k, dtype=torch.bool, device=lw.device).view(k, k, *([1] * (lw.dim() - 1)))
            replaced = torch.where(eye, others.unsqueeze(1), lw.unsqueeze(0))  # (K, K, ...)
            bound_minus = torch.logsumexp(replaced, 1) - math.log(k)
            signal = bound.detach().unsqueeze(0) - bound_minus
        # Non-finite log-densities (a saturated Bernoulli(logits=inf) gives nan, a draw at a
        # density singularity inf) carry no score term: inf - inf would make the value nan.
        score = zero_value(finite_log_prob(first_order_only(log_q, "VIMCO()")))
        return bound + (signal * score).sum(0)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return num_samples
