"""The unordered set estimator: k categories without replacement, with its built-in baseline."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.estimators.base import CostFn, check_costs, first_order_only
from reparam.estimators.discrete_support import (
    batch_shape,
    credit_logits,
    discrete_kind,
    gumbel_noise,
    logits_of,
    num_categories,
    one_hot,
)

MAX_SET_SIZE = 16


@functools.lru_cache(maxsize=MAX_SET_SIZE)
def _layers(k: int) -> tuple[list[tuple[list[int], list[list[int]], list[list[int]]]], dict[int, int]]:
    """Subsets of ``{0..k-1}`` (bitmasks) by size: for each size ``c >= 1`` the masks, and per
    mask its elements and the positions (in the size ``c - 1`` list) of the mask without each
    element; plus ``where[mask]``: the position of ``mask`` in its size's list."""
    by_size: list[list[int]] = [[] for _ in range(k + 1)]
    for mask in range(1 << k):
        by_size[mask.bit_count()].append(mask)
    where = {mask: i for masks in by_size for i, mask in enumerate(masks)}
    layers = []
    for size in range(1, k + 1):
        elements = [[t for t in range(k) if mask >> t & 1] for mask in by_size[size]]
        children = [
            [where[mask & ~(1 << t)] for t in elems]
            for mask, elems in zip(by_size[size], elements, strict=True)
        ]
        layers.append((by_size[size], elements, children))
    return layers, where


def _log_set_probabilities(log_p: Tensor, log_rest: Tensor) -> list[Tensor]:
    r"""``log P(T)`` for every subset ``T`` of the drawn set ``S``, by size (``[size][..., i]``).

    :math:`P(T)` is the probability that :math:`|T|` draws without replacement from the
    categories outside :math:`S \setminus T` give exactly :math:`T` (in any order):
    :math:`P(\emptyset) = 1`,
    :math:`P(T) = \sum_{t \in T} p_t\, P(T \setminus t) / (r + p_T)` with :math:`r` the mass
    outside :math:`S` (``log_rest``) — exact, :math:`O(k 2^k)`. Zero-probability members
    (masked categories drawn because fewer than ``k`` were possible) are left out:
    :math:`P(T) = P(T \cap \mathrm{supp})`."""
    k = log_p.shape[-1]
    layers, _ = _layers(k)
    device = log_p.device
    previous = torch.zeros_like(log_p[..., :1])  # size 0: P(empty) = 1
    out = [previous]
    for masks, elements, children in layers:
        size = len(elements[0])
        elems = torch.tensor(elements, device=device).flatten()
        kids = torch.tensor(children, device=device).flatten()
        lp = log_p.index_select(-1, elems).unflatten(-1, (len(masks), size))
        below = previous.index_select(-1, kids).unflatten(-1, (len(masks), size))
        numerator = torch.logsumexp(lp + below, -1)
        mass = torch.logsumexp(lp, -1)  # log p_T
        total = torch.logaddexp(log_rest.unsqueeze(-1).expand_as(mass), mass)
        possible = torch.isfinite(mass)
        current = torch.where(possible, numerator - torch.where(possible, total, 0.0), 0.0)
        out.append(current)
        previous = current
    return out


@dataclass(frozen=True)
class UnorderedSet:
    r"""The unordered set estimator with its built-in baseline, for ``Categorical`` /
    ``OneHotCategorical`` variables, each with its own cost.

    Per variable, ``k = num_samples`` distinct categories :math:`S` are drawn without
    replacement by Gumbel-top-k (the ``k`` largest :math:`\log p_i + G_i`). With
    :math:`p(S)` the probability of drawing the set :math:`S` in any order,
    :math:`p^{D \setminus A}` the distribution renormalised outside :math:`A`, and the
    leave-one-out ratio :math:`R(S, s) = p^{D \setminus \{s\}}(S \setminus \{s\}) / p(S)`,

    .. math::
        \hat g = \sum_{s \in S} \nabla p(s)\, R(S, s) \Big(f(s) - \sum_{s' \in S} p(s')\,
            R^{D \setminus \{s\}}(S, s')\, f(s')\Big),
        \qquad
        R^{D \setminus \{s\}}(S, s') = \frac{p^{D \setminus \{s, s'\}}(S \setminus \{s, s'\})}
            {p^{D \setminus \{s\}}(S \setminus \{s\})}\ (= 1 \text{ for } s' = s).

    :math:`p(s) R(S, s)` is the probability that :math:`s` was the first draw given the set, so
    the first term is REINFORCE Rao-Blackwellised over the order, and the baseline of
    :math:`s` — :math:`p(s) f(s)` plus the unordered set estimate of
    :math:`\sum_{x \ne s} p(x) f(x)` from the other members, given :math:`s` first — has
    conditional mean :math:`\mathbb{E}[f]` whatever :math:`s`: unbiased for any ``f``. With
    ``num_samples=1`` there are no other members and the baseline is 0 (plain REINFORCE).
    The surrogate's value is the unbiased :math:`\sum_{s \in S} p(s) R(S, s) f(s)`. The set
    probabilities are computed exactly by a recursion over the :math:`2^k` subsets of
    :math:`S` (:math:`O(k 2^k)` per variable; ``num_samples <= 16``).

    ``f`` receives ``(k, *batch_shape)`` samples (row ``i``: the ``i``-th draw of every
    variable) and must return one cost per variable, ``(k, *batch_shape)``: sampling without
    replacement from a product of categoricals is not Gumbel-top-k per variable, so costs
    shared by several variables (or an ``Independent`` event of more than one variable) are
    refused. ``num_samples <= K``; with fewer than ``k`` possible categories (masked logits)
    the set holds all of them and the estimate is exact. Cost: ``k`` evaluations of ``f``.
    First derivatives only.

    Reference: Kool, van Hoof & Welling, "Estimating Gradients for Discrete Random Variables by
    Sampling without Replacement", ICLR 2020 (the unordered set estimator with baseline).

    Example:
        >>> from torch.distributions import Categorical
        >>> logits = torch.zeros(5, 6, requires_grad=True)  # 5 independent variables
        >>> f = lambda z: (z.float() - 2.5) ** 2  # one cost per variable: (k, 5)
        >>> value = rp.expect(f, Categorical(logits=logits), rp.UnorderedSet(), num_samples=3)
        >>> value.shape, logits.grad is None
        (torch.Size([5]), True)
        >>> value.sum().backward()  # 3 distinct categories per variable, 3 evaluations of f
    """

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        kind = discrete_kind(q, "UnorderedSet()", ("categorical", "onehot"))
        logits = logits_of(q)
        k = num_samples
        categories = num_categories(q, kind)
        if not 1 <= k <= min(categories, MAX_SET_SIZE):
            raise ValueError(
                f"UnorderedSet() draws num_samples distinct categories per variable, so it needs "
                f"1 <= num_samples <= min(K, {MAX_SET_SIZE}) with K={categories} categories; got "
                f"num_samples={k}. Use rp.ScoreFunction(rp.baselines.LeaveOneOut()) for more samples."
            )
        shape = tuple(batch_shape(q))
        with torch.no_grad():
            log_p = torch.log_softmax(logits.detach(), -1).expand(*shape, categories)
            keys = log_p + gumbel_noise(log_p.shape, log_p)
            drawn = torch.topk(keys, k, dim=-1).indices  # (*B, k), a draw without replacement
            rows = drawn.movedim(-1, 0)  # (k, *B)
        sample = one_hot(rows, categories, logits.dtype) if kind == "onehot" else rows
        costs = check_costs(f(sample), q, k)
        lead = costs.dim() - 1
        if math.prod(shape[lead:]) != 1:
            raise ValueError(
                f"UnorderedSet() needs one cost per categorical variable: f returned costs of shape "
                f"{tuple(costs.shape)} for variables of batch shape {shape}, so a cost depends on "
                f"{math.prod(shape[lead:])} variables (an Independent event, or a sum over batch "
                "dims). Return costs shaped (num_samples, *batch_shape), or use rp.CARMS(), "
                "rp.ARSM() or rp.ScoreFunction(rp.baselines.LeaveOneOut()) for costs that couple "
                "variables."
            )
        with torch.no_grad():
            c = costs.detach().to(log_p.dtype).reshape(k, *shape).movedim(0, -1)  # (*B, k)
            lp = log_p.gather(-1, drawn)  # (*B, k)
            in_set = torch.zeros_like(log_p, dtype=torch.bool).scatter(-1, drawn, True)
            log_rest = torch.logsumexp(torch.where(in_set, -math.inf, log_p), -1)
            sets = _log_set_probabilities(lp, log_rest)
            _, where = _layers(k)
            full = (1 << k) - 1
            drop1 = torch.tensor([where[full & ~(1 << s)] for s in range(k)], device=lp.device)
            log_p1 = sets[k - 1].index_select(-1, drop1)  # P(S \ {s})
            log_w = lp + log_p1 - sets[k][..., :1]  # p(s) R(S, s)
            possible = torch.isfinite(lp)
            c = torch.where(possible, c, 0.0)  # f at impossible categories never counts
            weight = torch.where(possible, torch.exp(log_w), 0.0)
            # coefficient[s, s'] = p(s') P(S \ {s, s'}) / P(S \ {s}); p(s) on the diagonal.
            if k >= 2:
                pairs = [
                    [where[full & ~(1 << s) & ~(1 << t)] if t != s else 0 for t in range(k)]
                    for s in range(k)
                ]
                drop2 = torch.tensor(pairs, device=lp.device).flatten()
                log_p2 = sets[k - 2].index_select(-1, drop2).unflatten(-1, (k, k))
                log_coef = lp.unsqueeze(-2) + log_p2 - log_p1.unsqueeze(-1)
                eye = torch.eye(k, dtype=torch.bool, device=lp.device)
                log_coef = torch.where(eye, lp.unsqueeze(-2).expand_as(log_coef), log_coef)
                coef = torch.where(possible.unsqueeze(-2), torch.exp(log_coef), 0.0)
                baseline = (coef * c.unsqueeze(-2)).sum(-1)  # (*B, k)
            else:  # one draw: no other member to build a baseline from (plain REINFORCE)
                baseline = torch.zeros_like(c)
            signal = weight * (c - baseline)
            p = torch.exp(log_p)
            grad = torch.zeros_like(p).scatter_add(-1, drawn, signal) - signal.sum(-1, keepdim=True) * p
            value_weight = weight.movedim(-1, 0).reshape(costs.shape)
        logits = first_order_only(logits, "UnorderedSet()")
        score = credit_logits(logits, grad).sum(-1)  # (*B)
        value = (value_weight * torch.where(value_weight > 0, costs, torch.zeros_like(costs))).sum(0)
        return value + score.reshape(value.shape)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return num_samples
