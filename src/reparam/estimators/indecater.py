"""IndeCateR: Rao-Blackwellised gradient for independent categorical dimensions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.estimators.base import CostFn, evaluate, first_order_only, zero_value
from reparam.estimators.discrete_support import (
    Kind,
    batch_shape,
    discrete_kind,
    logits_of,
    num_categories,
    one_hot,
    sum_to_cost,
    unwrap,
)


def _index_of(kind: Kind, sample: Tensor) -> Tensor:
    if kind == "onehot":
        return sample.argmax(-1)
    return sample.long()


def _as_input(kind: Kind, index: Tensor, k: int, dtype: torch.dtype) -> Tensor:
    if kind == "bernoulli":
        return index.to(dtype)
    if kind == "onehot":
        return one_hot(index, k, dtype)
    return index


@dataclass(frozen=True)
class IndeCateR:
    r"""IndeCateR: sum out each variable in turn, holding the others at their sampled values.

    For independent variables :math:`z_1, \dots, z_D` with :math:`K` categories each,

    .. math::
        \nabla_\phi \mathbb{E}_q[f(z)] = \sum_{d=1}^{D} \mathbb{E}_{z_{-d}}\Big[\sum_{k=1}^{K}
            \nabla_\phi q_d(k)\; f(z_{-d}, z_d = k)\Big]
        \approx \frac1N \sum_{n=1}^N \sum_d \sum_k \nabla_\phi q_d(k)\, f(z^{(n)}_{-d}, k).

    Unbiased for any ``f``; Rao-Blackwellised in each coordinate, so no baseline is needed
    (:math:`\sum_k \nabla q_d(k) = 0`). Here :math:`D` is the number of variables each cost
    depends on: with costs shaped ``(N, *batch_shape[:k])`` it is ``prod(batch_shape[k:])``, and
    variable ``d`` is substituted in every leading batch slice at once (their costs are
    separate). ``f`` is called twice: on the ``N`` samples (which give the value), then on the
    ``N D (K - 1)`` samples that differ from them in one coordinate, stacked in one call.

    Cost: :math:`N (1 + D (K - 1))` evaluations of ``f``. :meth:`evaluations` assumes one cost
    per sample (all variables in one cost) unless given ``cost_dims`` (the ``k`` above).

    Reference: De Smet, Sansone & Zuidberg Dos Martires, "Differentiable Sampling of Categorical
    Distributions Using the CatLog-Derivative Trick" (IndeCateR), NeurIPS 2023.
    """

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        kind = discrete_kind(q, "IndeCateR()")
        logits = logits_of(q)
        k = num_categories(q, kind)
        n = num_samples
        shape = batch_shape(q)
        with torch.no_grad():
            sample = unwrap(q).sample((n,))
        costs = evaluate(f, sample, q, n)
        lead = costs.dim() - 1
        p, d = math.prod(shape[:lead]), math.prod(shape[lead:])
        index = _index_of(kind, sample).reshape(n, p, d)
        # Substitutes: (K-1, D, N, P, D); in substitute (j, e), variable e takes (index + j) mod K.
        shifts = torch.arange(1, k, device=index.device).view(k - 1, 1, 1, 1)
        shifted = (index.unsqueeze(0) + shifts) % k  # (K-1, N, P, D)
        eye = torch.eye(d, dtype=torch.bool, device=index.device).view(1, d, 1, 1, d)
        subs = torch.where(eye, shifted.unsqueeze(1), index.view(1, 1, n, p, d))
        dtype = logits.dtype
        subs_in = _as_input(kind, subs.reshape((k - 1) * d * n, *shape), k, dtype)
        with torch.no_grad():
            sub_costs = evaluate(f, subs_in, q, (k - 1) * d * n)
        # table[n, P, D, j]: cost with variable d shifted by j (j = 0: the sample itself).
        sub_costs = sub_costs.reshape(k - 1, d, n, p).permute(2, 3, 1, 0)
        own = costs.detach().reshape(n, p, 1, 1).expand(n, p, d, 1)
        table = torch.cat([own, sub_costs.to(own.dtype)], -1)
        # values[n, P, D, c] = table[..., (c - index) mod K]
        cats = torch.arange(k, device=index.device)
        gather = (cats - index.unsqueeze(-1)) % k
        values = table.gather(-1, gather)
        if kind == "bernoulli":
            p1 = torch.sigmoid(logits).expand(shape)
            probs = torch.stack([1.0 - p1, p1], -1)
        else:
            probs = torch.softmax(logits, -1).expand(*shape, k)
        # A category of probability 0 (masked logit, saturated Bernoulli) contributes exactly 0,
        # even where f is not finite there (its probability has zero gradient too).
        values = values.reshape(n, *shape, k)
        values = torch.where(probs.detach() > 0, values, torch.zeros_like(values))
        # first order only: the cross-variable terms of a Hessian are not in this estimate.
        term = (values * first_order_only(probs, "IndeCateR()")).sum(-1).mean(0)
        return costs.mean(0) + sum_to_cost(zero_value(term), costs, leading=0)

    def evaluations(self, q: Distribution, num_samples: int, cost_dims: int = 0) -> int:
        kind = discrete_kind(q, "IndeCateR()")
        d = math.prod(batch_shape(q)[cost_dims:])
        return num_samples * (1 + d * (num_categories(q, kind) - 1))
