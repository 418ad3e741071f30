"""Input-dependent baseline trained by regression on the cost (NVIL style)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from reparam.baselines.base import ControlVariate, CostFn

Features = Callable[[Distribution], Tensor]


def _rows(part: Tensor, q: Distribution) -> Tensor:
    """``part`` (a parameter or moment of ``q``) as one row per batch element: broadcast to
    ``batch_shape + event_shape`` unless it already starts with ``batch_shape`` (``probs`` of a
    ``Categorical`` carry a trailing category dim beyond the event), then flattened."""
    batch = q.batch_shape
    if part.shape[: len(batch)] != batch or part.dim() < len(batch):
        part = part.expand(batch + q.event_shape)
    return part.reshape(*batch, math.prod(part.shape[len(batch) :]))


def distribution_features(q: Distribution) -> Tensor:
    """Default features: ``q``'s mean and standard deviation (``probs`` for discrete ``q``),
    detached, one row per batch element, flattened over the event (and the categories).

    Example:
        >>> from torch.distributions import Normal
        >>> distribution_features(Normal(torch.zeros(4), 1.0)).shape  # mean and std per element
        torch.Size([4, 2])
    """
    probs = getattr(q, "probs", None) if "probs" in q.arg_constraints else None
    parts = [probs] if isinstance(probs, Tensor) else [q.mean, q.stddev]
    return torch.cat([_rows(p.detach(), q) for p in parts], dim=-1)


class Learned:
    r"""A learned baseline :math:`b_\psi(x)` regressed onto the cost.

    The score term uses :math:`(f(z) - b_\psi(x)) \nabla_\phi \log q_\phi(z)`; because
    :math:`b_\psi(x)` does not depend on ``z`` the estimator stays unbiased. The surrogate also
    carries the zero-valued term :math:`\|b_\psi(x) - f(z)\|^2 - \text{sg}(\cdot)`, so the same
    backward pass gives ``module`` the gradient of the squared regression error: include
    ``module.parameters()`` in your optimizer.

    Args:
        module: maps features shaped ``(*cost_shape, F)`` to baselines shaped ``(*cost_shape)``
            or ``(*cost_shape, 1)``.
        features: ``q -> Tensor`` giving the inputs ``x`` (e.g. ``lambda q: images``); the
            default uses ``q``'s detached mean and standard deviation (``probs`` for discrete
            ``q``), which, for an amortised ``q``, depend on the data point. Features are
            detached: the baseline never moves ``q``.

    Cost: no extra evaluations of ``f``; one forward pass of ``module``.

    Higher orders: the baseline value is detached and the regression term depends only on
    ``module``'s parameters, so ``ScoreFunction``'s Hessians in ``q``'s (and ``f``'s)
    parameters stay unbiased; the ``module`` block of a Hessian is that of the regression loss.

    Example:
        >>> from torch import nn
        >>> from torch.distributions import Normal
        >>> loc = torch.zeros(4, requires_grad=True)
        >>> baseline = rp.baselines.Learned(nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1)))
        >>> f = lambda z: (z - 1.0) ** 2  # one cost per sample and element
        >>> value = rp.expect(f, Normal(loc, 1.0), rp.ScoreFunction(baseline), num_samples=8)
        >>> value.sum().backward()  # trains the baseline's network too

    Reference: Mnih & Gregor, "Neural Variational Inference and Learning in Belief Networks",
    ICML 2014.
    """

    min_samples = 1

    def __init__(self, module: nn.Module, features: Features | None = None) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"Learned(module) needs a torch.nn.Module, got {type(module).__name__}; e.g. "
                "Learned(nn.Sequential(nn.Linear(F, 64), nn.Tanh(), nn.Linear(64, 1)))."
            )
        self.module = module
        self.features = features or distribution_features

    def __call__(self, costs: Tensor, z: Tensor, q: Distribution, f: CostFn) -> ControlVariate:
        cost_shape = costs.shape[1:]
        x = self.features(q).detach()
        if x.shape[: len(cost_shape)] == cost_shape:
            x = x.reshape(*cost_shape, math.prod(x.shape[len(cost_shape) :]))
        baseline = self.module(x)
        if baseline.dim() == len(cost_shape) + 1 and baseline.shape[-1] == 1:
            baseline = baseline.squeeze(-1)
        if baseline.shape != cost_shape:
            raise ValueError(
                f"Learned baseline module returned shape {tuple(baseline.shape)}, expected the "
                f"cost shape {tuple(cost_shape)} (or with a trailing 1); end the module with "
                "nn.Linear(hidden, 1)."
            )
        # Mean squared error over samples and cost elements (a sum when there are none, so a
        # size-0 batch gives a zero loss rather than 0/0).
        loss = (baseline - costs.detach()).pow(2).sum() / max(costs.numel(), 1)
        return ControlVariate(baseline.detach(), loss - loss.detach())

    def __repr__(self) -> str:
        return f"Learned({self.module.__class__.__name__})"
