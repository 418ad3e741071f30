"""Straight-through estimator (biased)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution

from reparam.estimators.base import CostFn, evaluate, first_order_only
from reparam.estimators.discrete_support import as_onehot, discrete_kind, logits_of, relaxed_input, unwrap


@dataclass(frozen=True)
class StraightThrough:
    r"""Straight-through gradient: a discrete forward pass, the identity in the backward pass.

    ``f`` receives an exact sample :math:`b \sim q` (bit for bit: the forward value is
    :math:`b + (\mu - \mathrm{sg}(\mu)) = b`), and the gradient is taken as if :math:`b` were its
    mean :math:`\mu`:

    .. math::
        \hat g = \nabla_b f(b)\; \frac{\partial \mu}{\partial \phi}, \qquad
        \mu = \sigma(\alpha)\ \text{(Bernoulli)},\quad \mu = \mathrm{softmax}(\alpha)\ \text{(one-hot)}.

    For ``Categorical`` (category numbers) ``f`` receives the category as a float and
    :math:`\mu = \sum_k k\, \mathrm{softmax}(\alpha)_k`. The value is an unbiased estimate of
    :math:`\mathbb{E}[f(b)]`; the gradient is **biased** (exact only when ``f`` is linear in
    ``b``). Needs ``f`` differentiable in its input. Cost: ``num_samples`` evaluations of ``f``.

    References: Bengio, Léonard & Courville, "Estimating or Propagating Gradients Through
    Stochastic Neurons for Conditional Computation", arXiv:1308.3432, 2013; Hinton, Coursera
    lectures, 2012.
    """

    def __call__(self, f: CostFn, q: Distribution, num_samples: int) -> Tensor:
        kind = discrete_kind(q, "StraightThrough()")
        logits = first_order_only(logits_of(q), "StraightThrough()")
        with torch.no_grad():
            sample = unwrap(q).sample((num_samples,))
        if kind == "bernoulli":
            mean = torch.sigmoid(logits)
            z = sample + (mean - mean.detach())
        else:
            probs = torch.softmax(logits, -1)
            hard = as_onehot(kind, sample, probs.shape[-1]).to(probs.dtype)
            z = relaxed_input(kind, hard + (probs - probs.detach()))
        return evaluate(f, z, q, num_samples).mean(0)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return num_samples
