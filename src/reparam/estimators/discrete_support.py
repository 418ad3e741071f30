"""Shared pieces of the discrete estimators: which family ``q`` is, its logits, how a cost
(shaped ``(n, *batch_shape[:k])``) is broadcast to, and credited from, per-variable terms.

Three families are supported, always with independent dimensions:

* ``Bernoulli``: batch ``B``, samples ``(n, *B)`` in {0, 1}, logits ``(*B)``;
* ``Categorical``: batch ``B``, samples ``(n, *B)`` of integer categories, logits ``(*B, K)``;
* ``OneHotCategorical``: batch ``B``, samples ``(n, *B, K)`` one-hot, logits ``(*B, K)``.

``Independent(base, r)`` wrappers are unwrapped: the samples are the same, and costs shaped like a
prefix of the outer batch are also a prefix of the base batch.

Infinite logits are allowed everywhere: a masked category (logit ``-inf``, probability 0) and a
saturated Bernoulli (logit ``+-inf``) give the limit of every estimator, with a finite value and
gradient exactly 0 w.r.t. the infinite logits (:func:`credit_logits`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, OneHotCategorical

Kind = Literal["bernoulli", "categorical", "onehot"]


def unwrap(q: Distribution) -> Distribution:
    """Strip ``Independent`` wrappers (samples are unchanged)."""
    while isinstance(q, Independent):
        q = q.base_dist
    return q


def discrete_kind(q: Distribution, estimator: str, allowed: tuple[Kind, ...] | None = None) -> Kind:
    """The family of ``q`` or a ``TypeError`` naming the estimator and what it supports."""
    base = unwrap(q)
    kind: Kind | None = None
    if isinstance(base, Bernoulli):
        kind = "bernoulli"
    elif isinstance(base, OneHotCategorical):
        kind = "onehot"
    elif isinstance(base, Categorical):
        kind = "categorical"
    allowed = allowed or ("bernoulli", "categorical", "onehot")
    if kind is None or kind not in allowed:
        names = {"bernoulli": "Bernoulli", "categorical": "Categorical", "onehot": "OneHotCategorical"}
        supported = ", ".join(names[k] for k in allowed)
        hint = (
            " For categorical variables use rp.IndeCateR(), rp.ScoreFunction(baseline="
            "rp.baselines.LeaveOneOut()) or rp.RELAX()."
            if "categorical" not in allowed
            else " For other distributions use rp.ScoreFunction() or rp.Pathwise()."
        )
        raise TypeError(
            f"estimator={estimator} supports q of type {supported} (independent dims), got "
            f"{type(base).__name__}.{hint}"
        )
    return kind


def logits_of(q: Distribution) -> Tensor:
    """Logits of ``q`` on its graph (for ``Categorical`` they are normalised log-probabilities).

    ``q`` is one of the families :func:`discrete_kind` accepts (callers check it first)."""
    base = unwrap(q)
    if isinstance(base, (Bernoulli, Categorical, OneHotCategorical)):
        return base.logits
    raise TypeError(
        f"q must be a Bernoulli, Categorical or OneHotCategorical (optionally inside "
        f"Independent) to have logits, got {type(base).__name__}; check it with discrete_kind first."
    )


def num_categories(q: Distribution, kind: Kind) -> int:
    return 2 if kind == "bernoulli" else int(logits_of(q).shape[-1])


def batch_shape(q: Distribution) -> torch.Size:
    return unwrap(q).batch_shape


def credit_logits(logits: Tensor, grad: Tensor) -> Tensor:
    r"""A zero-valued tensor (shaped like ``grad``) whose gradient w.r.t. ``logits`` is ``grad``.

    Saturated entries (Bernoulli logits :math:`\pm\infty`, masked categories at
    :math:`-\infty`) are credited nothing: the expectation does not depend on them (the
    derivative of :math:`\sigma(\alpha)` or of a zero probability vanishes there), and
    ``logits - logits.detach()`` would be ``inf - inf = nan`` in value. So the value is exactly
    0 and the gradient is ``grad`` at finite logits and 0 at infinite ones, whatever ``grad``
    holds there."""
    finite = torch.isfinite(logits.detach())
    safe = torch.where(finite, logits, torch.zeros_like(logits))
    return (safe - safe.detach()) * torch.where(finite, grad, torch.zeros_like(grad))


def sum_to_cost(x: Tensor, costs: Tensor, leading: int = 1) -> Tensor:
    """Sum the trailing dims of ``x`` until it has ``costs.dim() - 1 + leading`` dims.

    With ``leading=1`` (``x`` has a sample dim) the result is shaped like ``costs``; with
    ``leading=0`` (``x`` shaped like the logits) it is shaped like one cost element,
    ``costs.shape[1:]``."""
    target = costs.dim() - 1 + leading
    if x.dim() > target:
        x = x.sum(dim=tuple(range(target, x.dim())))
    return x


def costs_per_variable(costs: Tensor, ndim: int) -> Tensor:
    """View ``costs`` (``(n, *B[:k])``) with trailing singleton dims up to ``ndim`` dims so it
    broadcasts against per-variable tensors shaped ``(n, *B)`` (or ``(n, *B, K)``)."""
    return costs.reshape(*costs.shape, *([1] * (ndim - costs.dim())))


def score(kind: Kind, sample: Tensor, logits: Tensor) -> Tensor:
    r"""Analytic :math:`\partial \log q(b) / \partial\,\text{logits}` per variable.

    Bernoulli: :math:`b - \sigma(\alpha)`; categorical: :math:`\text{onehot}(b) - \text{softmax}(\alpha)`
    (shaped like the logits with a leading sample dim)."""
    if kind == "bernoulli":
        return sample - torch.sigmoid(logits)
    return as_onehot(kind, sample, logits.shape[-1]) - torch.softmax(logits, -1)


def one_hot(index: Tensor, k: int, dtype: torch.dtype) -> Tensor:
    """``F.one_hot(index, k).to(dtype)`` by comparison with ``arange(k)``: ``F.one_hot`` reads
    the indices' range back to the host to validate it (a sync per call)."""
    categories = torch.arange(k, device=index.device)
    return (index.unsqueeze(-1) == categories).to(dtype)


def as_onehot(kind: Kind, sample: Tensor, k: int) -> Tensor:
    """One-hot version of a categorical sample (``onehot`` samples are returned as they are)."""
    if kind == "categorical":
        return one_hot(sample.long(), k, torch.get_default_dtype())
    return sample


def from_onehot(kind: Kind, onehot: Tensor) -> Tensor:
    """What ``f`` receives for a hard one-hot sample: the index for ``Categorical``."""
    if kind == "categorical":
        return onehot.argmax(-1)
    return onehot


def relaxed_input(kind: Kind, soft: Tensor) -> Tensor:
    r"""What ``f`` receives for a relaxed (soft) one-hot sample ``y``.

    ``OneHotCategorical``: ``y`` itself. ``Categorical`` samples are category numbers, so ``f``
    receives the relaxed number :math:`\sum_k k\, y_k` (exactly the category when ``y`` is
    one-hot); an ``f`` that needs a one-hot vector should be written for ``OneHotCategorical``."""
    if kind == "categorical":
        values = torch.arange(soft.shape[-1], dtype=soft.dtype, device=soft.device)
        return (soft * values).sum(-1)
    return soft


def uniform(shape: torch.Size | tuple[int, ...], like: Tensor) -> Tensor:
    """Uniform noise strictly inside (0, 1): ``log(u)`` and ``log(1 - u)`` are always finite."""
    tiny = torch.finfo(like.dtype).tiny
    eps = torch.finfo(like.dtype).eps
    u = torch.rand(shape, dtype=like.dtype, device=like.device)
    return u.clamp(tiny, 1.0 - eps)


def logistic_noise(shape: torch.Size | tuple[int, ...], like: Tensor) -> Tensor:
    """``log u - log(1 - u)``: standard logistic noise, always finite."""
    u = uniform(shape, like)
    return torch.log(u) - torch.log1p(-u)


def gumbel_noise(shape: torch.Size | tuple[int, ...], like: Tensor) -> Tensor:
    """``-log(-log u)``: standard Gumbel noise, always finite."""
    u = uniform(shape, like)
    return -torch.log(-torch.log(u))


def check_pairs(num_samples: int, estimator: str) -> None:
    if num_samples < 1:
        raise ValueError(f"{estimator} needs num_samples >= 1 (antithetic pairs), got {num_samples}.")
