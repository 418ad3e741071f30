"""DisARM: ARM with the antithetic noise integrated out."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.estimators.base import CostFn, evaluate, first_order_only
from reparam.estimators.discrete_support import (
    batch_shape,
    check_pairs,
    costs_per_variable,
    credit_logits,
    discrete_kind,
    logits_of,
    sum_to_cost,
    uniform,
)


@dataclass(frozen=True)
class DisARM:
    r"""DisARM gradient for ``b ~ Bernoulli(sigmoid(alpha))`` (independent dims).

    An antithetic pair :math:`b = \mathbb{1}[u < \sigma(\alpha)]`,
    :math:`\tilde b = \mathbb{1}[1 - u < \sigma(\alpha)]` (each marginally
    ``Bernoulli(sigmoid(alpha))``), and ARM's estimator with ``u`` integrated out given the pair:

    .. math::
        \hat g_{\alpha_i} = \tfrac12 \big(f(b) - f(\tilde b)\big)\,
            (-1)^{\tilde b_i}\, \mathbb{1}[b_i \ne \tilde b_i]\; \sigma(|\alpha_i|).

    Unbiased for any ``f`` and, being a conditional expectation of ARM, never has more variance
    than ARM (Rao-Blackwell). ``num_samples`` counts antithetic pairs; **each pair costs two
    evaluations of f**, passed to ``f`` in ONE call of ``2 N`` stacked samples (rows
    ``0..N-1`` are :math:`b`, rows ``N..2N-1`` are :math:`\tilde b`). The surrogate's value is
    the mean of the ``2 N`` costs; batched costs are credited to their own batch slice.

    Bernoulli only (the paper is about binary variables): for categorical variables use
    :class:`~reparam.estimators.carms.CARMS`, :class:`~reparam.estimators.arsm.ARSM`,
    :class:`IndeCateR` or RLOO.

    Reference: Dong, Mnih & Tucker, "DisARM: An Antithetic Gradient Estimator for Binary Latent
    Variables", NeurIPS 2020.
    """

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        discrete_kind(q, "DisARM()", ("bernoulli",))
        check_pairs(num_samples, "DisARM()")
        logits = logits_of(q)
        n = num_samples
        with torch.no_grad():
            alpha = logits.detach()
            u = uniform((n, *batch_shape(q)), alpha)
            p = torch.sigmoid(alpha)
            b = (u < p).to(alpha.dtype)
            b_tilde = (1.0 - u < p).to(alpha.dtype)
        costs = evaluate(f, torch.cat([b, b_tilde]), q, 2 * n)
        detached = costs.detach()
        c, c_tilde = detached[:n], detached[n:]
        diff = costs_per_variable(c - c_tilde, u.dim())
        # (-1)^{b~} 1[b != b~] = b - b~ for binary b, b~.
        grad = (0.5 * diff * (b - b_tilde) * torch.sigmoid(alpha.abs())).mean(0)
        logits = first_order_only(logits, "DisARM()")
        return costs.mean(0) + sum_to_cost(credit_logits(logits, grad), costs, leading=0)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return 2 * num_samples
