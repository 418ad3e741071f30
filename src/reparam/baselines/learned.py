"""Input-dependent baseline trained by regression on the cost (NVIL style)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from reparam.baselines.base import ControlVariate, CostFn

Features = Callable[[Distribution], Tensor]


def distribution_features(q: Distribution) -> Tensor:
    """Default features: ``q``'s mean and standard deviation (``probs`` for discrete ``q``),
    detached, one row per batch element, flattened over the event."""
    probs = getattr(q, "probs", None) if "probs" in q.arg_constraints else None
    parts = [probs] if isinstance(probs, Tensor) else [q.mean, q.stddev]
    shape = q.batch_shape + q.event_shape
    return torch.cat([p.expand(shape).reshape(*q.batch_shape, -1) for p in parts], dim=-1)


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
        x = x.reshape(*cost_shape, -1) if x.shape[: len(cost_shape)] == cost_shape else x
        baseline = self.module(x)
        if baseline.dim() == len(cost_shape) + 1 and baseline.shape[-1] == 1:
            baseline = baseline.squeeze(-1)
        if baseline.shape != cost_shape:
            raise ValueError(
                f"Learned baseline module returned shape {tuple(baseline.shape)}, expected the "
                f"cost shape {tuple(cost_shape)} (or with a trailing 1); end the module with "
                "nn.Linear(hidden, 1)."
            )
        loss = (baseline - costs.detach()).pow(2).mean()
        return ControlVariate(baseline.detach(), loss - loss.detach())

    def __repr__(self) -> str:
        return f"Learned({self.module.__class__.__name__})"
