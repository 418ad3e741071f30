"""ARM: the augment-REINFORCE-merge estimator for Bernoulli variables."""

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
class ARM:
    r"""Augment-REINFORCE-merge gradient for ``b ~ Bernoulli(sigmoid(alpha))`` (independent dims).

    With one uniform :math:`u \sim U(0, 1)^D` per antithetic pair,

    .. math::
        b^{(1)} = \mathbb{1}[u > \sigma(-\alpha)], \quad b^{(2)} = \mathbb{1}[u < \sigma(\alpha)],
        \qquad
        \hat g_{\alpha_i} = \big(f(b^{(1)}) - f(b^{(2)})\big)\,\big(u_i - \tfrac12\big).

    Both :math:`b^{(1)}` and :math:`b^{(2)}` are marginally ``Bernoulli(sigmoid(alpha))``, and
    :math:`\mathbb{E}_u[\hat g] = \nabla_\alpha \mathbb{E}[f(b)]` exactly, for any ``f`` (no
    differentiability needed): ARM is unbiased. The gradient w.r.t. any parameter upstream of
    ``alpha`` follows by the chain rule; gradients of ``f``'s own parameters flow through the
    mean of the ``2 N`` costs, which is also the value of the surrogate.

    ``num_samples`` counts antithetic pairs. **Each pair costs two evaluations of f**; all
    ``2 N`` points are passed to ``f`` in ONE call, stacked along the sample dim (``f`` sees
    ``(2 N, *batch_shape)``: the first ``N`` rows are :math:`b^{(1)}`, the last ``N`` are
    :math:`b^{(2)}`). Costs may be batched (``(2 N, *batch_shape[:k])``): each cost is credited
    only to the logits of its own batch slice.

    Bernoulli only: its categorical extension is :class:`~reparam.estimators.arsm.ARSM`
    (``1 + K (K-1)/2`` evaluations per draw); see also :class:`~reparam.estimators.carms.CARMS`.

    Reference: Yin & Zhou, "ARM: Augment-REINFORCE-Merge Gradient for Stochastic Binary
    Networks", ICLR 2019.
    """

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        discrete_kind(q, "ARM()", ("bernoulli",))
        check_pairs(num_samples, "ARM()")
        logits = logits_of(q)
        n = num_samples
        with torch.no_grad():
            alpha = logits.detach()
            u = uniform((n, *batch_shape(q)), alpha)
            b1 = (u > torch.sigmoid(-alpha)).to(alpha.dtype)
            b2 = (u < torch.sigmoid(alpha)).to(alpha.dtype)
        costs = evaluate(f, torch.cat([b1, b2]), q, 2 * n)
        detached = costs.detach()
        c1, c2 = detached[:n], detached[n:]
        diff = costs_per_variable(c1 - c2, u.dim())
        grad = (diff * (u - 0.5)).mean(0)
        logits = first_order_only(logits, "ARM()")
        return costs.mean(0) + sum_to_cost(credit_logits(logits, grad), costs, leading=0)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return 2 * num_samples
