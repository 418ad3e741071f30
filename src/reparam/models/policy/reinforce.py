"""REINFORCE with reward-to-go credit assignment and the library's baselines."""

from __future__ import annotations

import torch
from torch import Tensor

from reparam.baselines import DeltaMethod, Learned, LeaveOneOut
from reparam.baselines.base import Baseline
from reparam.estimators.base import zero_value


def reward_to_go(costs: Tensor, discount: float = 1.0) -> Tensor:
    r"""``G_t = sum_{s >= t} discount^(s - t) c_s`` along the last dim (time)."""
    if not 0.0 < discount <= 1.0:
        raise ValueError(f"discount must be in (0, 1], got {discount}; 0.99 or 1.0 are typical.")
    returns = torch.empty_like(costs)
    running = torch.zeros_like(costs[..., 0])
    for t in range(costs.shape[-1] - 1, -1, -1):
        running = costs[..., t] + discount * running
        returns[..., t] = running
    return returns


def reinforce_surrogate(
    log_probs: Tensor,
    returns: Tensor,
    baseline: Baseline | None = None,
    mask: Tensor | None = None,
    features: Tensor | None = None,
) -> Tensor:
    r"""Zero-valued surrogate whose gradient is REINFORCE with reward-to-go credit.

    .. math::
        \hat g = \frac1N \sum_{n=1}^N \sum_{t} \big(G^{(n)}_t - b^{(n)}_t\big)\,
            \nabla_\theta \log \pi_\theta\big(a^{(n)}_t \mid s^{(n)}_t\big),
        \qquad G_t = \sum_{s \ge t} \gamma^{s-t} c_s.

    Credit assignment: the action at step ``t`` is credited only with the costs that follow it
    (``G_t``, the reward-to-go). Costs before ``t`` are independent of ``a_t`` given the past,
    so their score terms have mean zero and dropping them keeps the estimator unbiased for the
    undiscounted objective when ``gamma = 1`` (Williams 1992; Sutton et al., NeurIPS 2000);
    ``gamma < 1`` further down-weights distant costs, which is biased for the undiscounted
    objective but the usual variance trade-off. A baseline ``b_t`` that does not depend on
    ``a_t`` keeps it unbiased:

    * ``LeaveOneOut()``: ``b^{(n)}_t`` is the mean reward-to-go at step ``t`` of the *other*
      episodes (a time-dependent baseline; needs ``N >= 2``),
    * ``MovingAverage()``: one running average of past reward-to-go values,
    * ``Learned(module)``: a value function ``b(s_t)`` of the state features ``features``
      (``(N, *batch, T, F)``), regressed onto ``G_t`` in the same backward pass (the module's
      parameters must be in the optimizer).

    Args:
        log_probs: ``log pi(a_t | s_t)``, shaped ``(N, *batch, T)``, differentiable.
        returns: ``G_t`` (costs, lower is better), shaped like ``log_probs``.
        baseline: ``None`` or a :mod:`reparam.baselines` object (not ``DeltaMethod``).
        mask: bool, ``True`` on steps inside an episode (episodes of different lengths).
        features: state features for ``Learned``.

    Returns:
        A scalar that is zero in value; its gradient is the estimate above averaged over the
        batch dims (plus the learned baseline's regression gradient).
    """
    if log_probs.shape != returns.shape:
        raise ValueError(
            f"log_probs {tuple(log_probs.shape)} and returns {tuple(returns.shape)} must have the "
            "same shape (N, *batch, T)."
        )
    if isinstance(baseline, DeltaMethod):
        raise TypeError(
            "DeltaMethod() needs a differentiable f of the samples; use LeaveOneOut(), "
            "MovingAverage() or Learned(module) for policies."
        )
    returns = returns.detach()
    valid = torch.ones_like(returns, dtype=torch.bool) if mask is None else mask.to(torch.bool)
    correction = returns.new_zeros(())
    if baseline is None:
        weights = returns
    elif isinstance(baseline, LeaveOneOut):
        weights = returns - baseline(returns, returns, None, None).value  # type: ignore[arg-type]
    elif isinstance(baseline, Learned):
        if features is None:
            raise ValueError("Learned() baselines need `features` (the states, (N, *batch, T, F)).")
        # without a mask every step counts: a reshape, not a boolean selection (which reads the
        # mask on the host to size its output)
        flat = features.reshape(-1, features.shape[-1]) if mask is None else features[valid]
        flat = flat.detach()
        targets = returns.reshape(-1) if mask is None else returns[valid]
        regressor = Learned(baseline.module, features=lambda _: flat)
        control = regressor(targets.reshape(1, -1), flat, None, None)  # type: ignore[arg-type]
        fitted = targets - control.value.to(returns.dtype).reshape(targets.shape)
        if mask is None:
            weights = fitted.reshape(returns.shape)
        else:
            weights = torch.zeros_like(returns)
            weights[valid] = fitted
        correction = control.correction if control.correction is not None else correction
    else:
        flat = (returns.reshape(-1) if mask is None else returns[valid]).reshape(1, -1)
        weights = returns - baseline(flat, flat, None, None).value  # type: ignore[arg-type]
    weights = torch.where(valid, weights, torch.zeros_like(weights))
    log_probs = torch.where(valid, log_probs, torch.zeros_like(log_probs))
    score = (weights * zero_value(log_probs)).sum(-1)
    return score.mean() + correction
