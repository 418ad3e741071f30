"""Exact expectation by enumerating a finite joint support."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.estimators.base import CostFn, evaluate
from reparam.estimators.discrete_support import costs_per_variable, unwrap


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
    :math:`K^D` evaluations of ``f``. Supports larger than ``max_support`` are refused with an
    error (before anything is allocated).

    Meant as the reference other estimators are tested against (e.g. Mohamed et al., JMLR
    2020, section 8).
    """

    max_support: int = 2**16

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
        log_prob = base.log_prob(z)
        joint = log_prob.reshape(m, -1).sum(-1)  # log q(z_m) of the whole configuration
        weights = costs_per_variable(joint.exp(), costs.dim())
        return (weights * costs).sum(0)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        k, d = self._check(q)
        return k**d
