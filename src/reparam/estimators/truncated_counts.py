"""Count distributions (Poisson, Binomial, Geometric) as categoricals over a truncated support,
for the generalised Gumbel-softmax (Joo et al. 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Binomial, Distribution, Geometric, Poisson

COUNT_FAMILIES = (Poisson, Binomial, Geometric)


def is_count(base: Distribution) -> bool:
    return isinstance(base, COUNT_FAMILIES)


def truncated_logits(base: Distribution, truncation: int) -> Tensor:
    r"""Normalised log-probabilities of the counts :math:`0, \dots, K - 1` (``K = truncation``),
    shaped ``(*batch, K)``, on ``base``'s graph:

    * Poisson: :math:`k \log\lambda - \lambda - \log k!`;
    * Binomial: :math:`\log\binom{n}{k} + k\log\sigma(\alpha) + (n - k)\log\sigma(-\alpha)`,
      :math:`-\infty` for :math:`k > n`;
    * Geometric (failures before the first success): :math:`k\log(1 - p) + \log p`;

    renormalised over the truncated support (the tail mass :math:`P(X \ge K)` is dropped, so
    pick ``K`` past the counts that matter)."""
    like = base.mean
    k = torch.arange(truncation, dtype=like.dtype, device=like.device).reshape(-1, *([1] * like.dim()))
    if isinstance(base, Poisson):
        rate = base.rate
        log_p = torch.xlogy(k, rate) - rate - torch.lgamma(k + 1)
    elif isinstance(base, Binomial):
        n, logits = base.total_count, base.logits
        kc = torch.minimum(k, n)
        up = torch.where(kc > 0, kc * F.logsigmoid(logits), torch.zeros_like(logits))
        down = torch.where(n - kc > 0, (n - kc) * F.logsigmoid(-logits), torch.zeros_like(logits))
        log_p = torch.lgamma(n + 1) - torch.lgamma(kc + 1) - torch.lgamma(n - kc + 1) + up + down
        log_p = torch.where(k <= n, log_p, torch.full_like(log_p, -torch.inf))
    elif isinstance(base, Geometric):
        p = base.probs
        fail = torch.where(k > 0, k * torch.log1p(-p), torch.zeros_like(p))
        log_p = fail + torch.log(p)
    else:
        name = type(base).__name__
        raise TypeError(f"truncated_logits: expected Poisson, Binomial or Geometric, got {name}.")
    log_p = torch.movedim(log_p, 0, -1)
    return log_p - torch.logsumexp(log_p, -1, keepdim=True)
