"""Gumbel-softmax / concrete relaxation (biased), optionally straight-through."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.estimators.base import CostFn, evaluate
from reparam.estimators.discrete_support import (
    Kind,
    batch_shape,
    discrete_kind,
    gumbel_noise,
    logistic_noise,
    logits_of,
    one_hot,
    relaxed_input,
)


def relaxed_bernoulli(logits: Tensor, noise: Tensor, temperature: Tensor | float) -> tuple[Tensor, Tensor]:
    """Soft sample ``sigmoid((alpha + L) / tau)`` and the hard sample ``1[alpha + L > 0]``.

    Finite at any ``tau > 0``: ``sigmoid`` saturates to exactly 0 or 1 with zero gradient. A
    saturated logit (``alpha + L = +-inf``) gives the soft sample exactly equal to the hard one
    with zero gradient in ``alpha`` and ``tau`` (``sigmoid(inf / tau)`` would be 1 in value but
    ``0 * inf = nan`` in its ``tau`` derivative)."""
    z = logits + noise
    hard = (z > 0).to(z.dtype)
    finite = torch.isfinite(z.detach())
    safe = torch.where(finite, z, torch.zeros_like(z))
    return torch.where(finite, torch.sigmoid(safe / temperature), hard), hard


def relaxed_onehot(logits: Tensor, noise: Tensor, temperature: Tensor | float) -> tuple[Tensor, Tensor]:
    """Soft sample ``softmax((alpha + G) / tau)`` and the hard one-hot ``argmax``.

    The running maximum is subtracted before dividing by ``tau``, so every scaled logit is
    ``<= 0``: small temperatures give exact 0/1 entries, never ``inf - inf`` or NaN. Masked
    categories (``alpha = -inf``) get exactly 0 with zero gradient in ``alpha`` and ``tau``:
    they are left out of the exponentials instead of entering as ``exp(-inf / tau)``."""
    z = logits + noise
    hard = one_hot(z.argmax(-1), z.shape[-1], z.dtype)
    finite = torch.isfinite(z.detach())
    top = z.detach().max(-1, keepdim=True).values
    shifted = torch.where(finite, z, top) - top  # <= 0; exactly 0 at masked entries
    weights = torch.where(finite, torch.exp(shifted / temperature), torch.zeros_like(z))
    return weights / weights.sum(-1, keepdim=True), hard


def relaxed_sample(
    kind: Kind, logits: Tensor, sample_shape: tuple[int, ...], temperature: Tensor | float
) -> tuple[Tensor, Tensor]:
    """``(soft, hard)`` for ``sample_shape`` draws: per-variable values for Bernoulli, one-hot
    rows for the categorical families."""
    noise_shape = (*sample_shape, *logits.shape)
    if kind == "bernoulli":
        return relaxed_bernoulli(logits, logistic_noise(noise_shape, logits), temperature)
    return relaxed_onehot(logits, gumbel_noise(noise_shape, logits), temperature)


@dataclass(frozen=True)
class GumbelSoftmax:
    r"""Pathwise gradient through the Gumbel-softmax (concrete) relaxation.

    Categorical: :math:`y = \mathrm{softmax}((\alpha + G)/\tau)`, :math:`G` i.i.d. Gumbel;
    Bernoulli: :math:`y = \sigma((\alpha + L)/\tau)`, :math:`L` logistic. ``f`` receives ``y``
    (``OneHotCategorical``: the relaxed one-hot; ``Categorical``: the relaxed category number
    :math:`\sum_k k\,y_k`, so ``f`` must accept float categories), and the estimator is
    :math:`\nabla_\phi f(y)`. With ``straight_through=True`` ``f`` receives the exactly discrete
    sample :math:`h = \mathrm{onehot}(\arg\max(\alpha + G))` (a true sample of ``q``) and the
    gradient is taken through :math:`h + y - \mathrm{sg}(y)`.

    **Biased**: the value is the mean of ``f`` at the relaxed points (an estimate of
    :math:`\mathbb{E}[f(y)]`, not :math:`\mathbb{E}[f(b)]`) unless ``straight_through`` is set,
    and the gradient is biased in both modes. As :math:`\tau \to 0` the relaxed value tends to
    the discrete one (the bias of the value vanishes) while the gradient's variance grows like
    :math:`1/\tau`; a large :math:`\tau` gives low variance and a large bias. Needs ``f``
    differentiable in its input. Cost: ``num_samples`` evaluations of ``f``. Numerically safe
    at small temperatures (noise kept strictly inside (0, 1), max-shifted softmax): no NaN.

    Args:
        temperature: :math:`\tau > 0`.
        straight_through: feed ``f`` the hard sample, differentiate through the soft one.

    References: Jang, Gu & Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR
    2017; Maddison, Mnih & Teh, "The Concrete Distribution", ICLR 2017.
    """

    temperature: float = 1.0
    straight_through: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)):
            raise TypeError(f"temperature must be a finite float > 0, got {self.temperature!r}.")
        if self.temperature <= 0:
            raise ValueError(
                f"temperature must be > 0, got {self.temperature}; typical values are 0.1 to 1 "
                "(use straight_through=True for exactly discrete forward values)."
            )

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        # the name is built from the fields, not repr(self): dataclass repr is guarded against
        # recursion with a thread-id lookup that torch.compile cannot trace (a graph break)
        name = f"GumbelSoftmax(temperature={self.temperature}, straight_through={self.straight_through})"
        kind = discrete_kind(q, name)
        logits = logits_of(q)
        if kind != "bernoulli" and logits.shape[:-1] != batch_shape(q):
            logits = logits.expand(*batch_shape(q), logits.shape[-1])
        soft, hard = relaxed_sample(kind, logits, (num_samples,), self.temperature)
        if self.straight_through:
            soft = hard.detach() + (soft - soft.detach())
        return evaluate(f, relaxed_input(kind, soft), q, num_samples).mean(0)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return num_samples
