"""Exact expectation by enumerating a finite joint support."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Bernoulli, Binomial, Distribution

from reparam.estimators.base import CostFn, evaluate
from reparam.estimators.discrete_support import costs_per_variable, unwrap


def _log_prob(base: Distribution, z: Tensor) -> Tensor:
    r"""``base.log_prob(z)``, finite in value and gradient at saturated logits.

    Torch's Bernoulli and Binomial log-probabilities are ``nan`` at logits :math:`\pm\infty`
    (``inf - inf``); here they are
    :math:`\log\binom{n}{k} + k \log\sigma(\alpha) + (n - k) \log\sigma(-\alpha)` with the
    terms of zero count left out, so an impossible value gets :math:`-\infty` and a certain one
    0, each with a finite gradient."""
    if isinstance(base, (Bernoulli, Binomial)):
        logits = base.logits
        total = base.total_count if isinstance(base, Binomial) else torch.ones_like(logits)
        ones, zeros = z, total - z
        up = torch.where(ones > 0, ones * F.logsigmoid(logits), torch.zeros_like(logits))
        down = torch.where(zeros > 0, zeros * F.logsigmoid(-logits), torch.zeros_like(logits))
        log_prob = up + down
        if isinstance(base, Binomial):
            log_prob = log_prob + torch.lgamma(total + 1) - torch.lgamma(z + 1) - torch.lgamma(zeros + 1)
        return log_prob
    return base.log_prob(z)


@dataclass(frozen=True)
class Exact:
    r"""Exact :math:`\mathbb{E}_q[f]` and its exact gradient by enumeration (zero variance).

    For a ``q`` with a finite support (``has_enumerate_support``: Bernoulli, Categorical,
    OneHotCategorical, Binomial, ...) and :math:`D` independent variables (the elements of
    ``q.batch_shape``) with :math:`K` values each, all :math:`K^D` joint configurations
    :math:`z_m` are passed to ``f`` in one call and

    .. math::
        \text{surrogate} = \sum_{m=1}^{K^D} q(z_m)\, f(z_m), \qquad
        \nabla_\phi\, \text{surrogate} = \nabla_\phi \mathbb{E}_q[f] \text{ exactly.}

    Gradients of ``f``'s own parameters are exact too. ``num_samples`` is ignored. Cost:
    :math:`K^D` evaluations of ``f``. Supports larger than ``max_support`` (an int >= 1) are
    refused with an error (before anything is allocated). Configurations of probability 0
    (masked categories, saturated Bernoulli/Binomial logits) contribute exactly 0 to the value
    and the gradient, even where ``f`` is not finite.

    Example::

        q = Bernoulli(logits=torch.zeros(3, requires_grad=True))
        rp.expect(lambda b: (b.sum(-1) - 1.0) ** 2, q, rp.Exact()).backward()

    Meant as the reference other estimators are tested against (e.g. Mohamed et al., JMLR
    2020, section 8).
    """

    max_support: int = 2**16

    def __post_init__(self) -> None:
        size = self.max_support
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(
                f"max_support must be an int >= 1 (the most joint configurations Exact() may "
                f"enumerate), got {self.max_support!r}; leave it at the default 2**16 or pass "
                "e.g. Exact(max_support=2**20) for a larger support."
            )

    def support_size(self, q: Distribution) -> tuple[int, int]:
        """``(K, D)``: values per variable and number of variables; raises if not enumerable."""
        base = unwrap(q)
        if not base.has_enumerate_support:
            raise TypeError(
                f"estimator=Exact() needs a q with a finite support (has_enumerate_support), got "
                f"{type(base).__name__}; use rp.Pathwise() or rp.ScoreFunction() instead."
            )
        k = int(base.enumerate_support(expand=False).shape[0])
        d = math.prod(base.batch_shape)
        return k, d

    def _check(self, q: Distribution) -> tuple[int, int]:
        k, d = self.support_size(q)
        if d * math.log(max(k, 1)) > math.log(self.max_support) + 1e-9:
            raise ValueError(
                f"estimator=Exact() would enumerate {k}**{d} joint configurations of q's {d} "
                f"variables, more than max_support={self.max_support}. Use an unbiased sampling "
                "estimator (rp.DisARM(), rp.IndeCateR(), rp.ScoreFunction(baseline="
                "rp.baselines.LeaveOneOut())), or Exact(max_support=...) if it really fits."
            )
        return k, d

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        k, d = self._check(q)
        base = unwrap(q)
        support = base.enumerate_support(expand=True)  # (K, *B, *E)
        event = support.shape[1 + len(base.batch_shape) :]
        values = support.reshape(k, d, *event)
        m = k**d
        index = torch.arange(m, device=support.device)
        powers = k ** torch.arange(d - 1, -1, -1, device=support.device)
        digits = torch.div(index[:, None], powers, rounding_mode="floor") % k  # (M, D)
        z = values[digits, torch.arange(d, device=support.device)]  # (M, D, *E)
        z = z.reshape(m, *base.batch_shape, *event)
        costs = evaluate(f, z, q, m)
        joint = _log_prob(base, z).reshape(m, -1).sum(-1)  # log q(z_m) of the whole configuration
        weights = costs_per_variable(joint.exp(), costs.dim())
        # Configurations of probability 0 (a masked category, a saturated logit) contribute
        # exactly 0, even where f is not finite, with no nan from 0 * inf in the gradient.
        possible = weights.detach() > 0
        costs = torch.where(possible, costs, torch.zeros_like(costs))
        return (weights * costs).sum(0)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        k, d = self._check(q)
        return int(k**d)
