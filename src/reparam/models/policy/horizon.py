"""Gradient variance against horizon: pathwise against score-function estimators."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from reparam.baselines import LeaveOneOut
from reparam.estimators.pathwise import Pathwise
from reparam.estimators.score_function import ScoreFunction
from reparam.models.policy.gaussian_policy import GaussianPolicy
from reparam.models.policy.objectives import policy_objective, reward_to_go_objective
from reparam.models.policy.task import DifferentiableTask

ESTIMATORS = ("pathwise", "score-function", "score-function-rtg")


class RepeatedLinearFeedback(nn.Module):
    """``R`` independent linear feedbacks ``mu_r(obs) = -K[r] obs`` acting on batch column ``r``
    (observations shaped ``(..., R, d)``)."""

    def __init__(self, gain: Tensor, repeats: int) -> None:
        super().__init__()
        self.K = nn.Parameter(gain.detach().expand(repeats, *gain.shape).clone())

    def forward(self, obs: Tensor) -> Tensor:
        return -torch.einsum("...rd,rmd->...rm", obs, self.K.to(obs.dtype))


def repeated_linear_gaussian(gain: Tensor, std: float, repeats: int) -> GaussianPolicy:
    r"""``R`` independent copies of the linear Gaussian policy ``u = -K obs + sigma eps``.

    Copy ``r`` owns ``K[r]`` and ``log_std[r]`` and acts on batch column ``r``, so one batched
    rollout and one backward pass give ``R`` independent gradient estimates at the same
    parameter values (their spread is the estimator's variance).
    """
    action_dim = gain.shape[0]
    return GaussianPolicy(
        RepeatedLinearFeedback(gain, repeats), action_dim, std, True, (repeats, action_dim), gain.dtype
    )


@dataclass(frozen=True)
class HorizonVariance:
    """Per-horizon total variance (summed over parameter coordinates) of one gradient
    estimate of the *average* per-step cost ``J_T / T``, and the squared norm of its mean."""

    horizons: tuple[int, ...]
    variance: dict[str, tuple[float, ...]]
    mean_norm2: dict[str, tuple[float, ...]]
    episodes_per_estimate: int
    repeats: int


def gradient_samples(
    task: DifferentiableTask,
    estimator: str,
    gain: Tensor,
    std: float,
    repeats: int,
    num_states: int,
    num_samples: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``repeats`` independent estimates of ``grad (K, log_std) J_T / T``, shaped
    ``(repeats, num_params)``; each uses ``num_states * num_samples`` episodes."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}.")
    policy = repeated_linear_gaussian(gain, std, repeats)
    x0 = task.initial_state(num_states * repeats, generator).reshape(num_states, repeats, -1)
    if estimator == "pathwise":
        value = policy_objective(task, policy, x0, Pathwise(), num_samples)
    elif estimator == "score-function":
        value = policy_objective(task, policy, x0, ScoreFunction(LeaveOneOut()), num_samples)
    else:
        value = reward_to_go_objective(task, policy, x0, num_samples, LeaveOneOut())
    (value * repeats / task.horizon).backward()
    return repeated_gradients(policy)


def repeated_gradients(policy: GaussianPolicy) -> Tensor:
    """The ``R`` gradients of a :func:`repeated_linear_gaussian` policy after ``backward``:
    ``(R, m * d + m)``, the ``K`` entries then the ``log_std`` entries of each copy."""
    if not isinstance(policy.mean, RepeatedLinearFeedback):
        raise TypeError(
            "repeated_gradients needs a repeated_linear_gaussian policy (a RepeatedLinearFeedback mean)."
        )
    K, log_std = policy.mean.K, policy.log_std
    if K.grad is None or log_std.grad is None:
        raise RuntimeError("no gradient yet: call backward on the objective first.")
    repeats = K.shape[0]
    return torch.cat([K.grad.reshape(repeats, -1), log_std.grad.reshape(repeats, -1)], 1)


def horizon_variance(
    make_task: Callable[[int], DifferentiableTask],
    horizons: Sequence[int],
    gain: Tensor,
    std: float,
    estimators: Sequence[str] = ESTIMATORS,
    repeats: int = 200,
    num_states: int = 4,
    num_samples: int = 4,
    seed: int = 0,
) -> HorizonVariance:
    """Measure the variance of each estimator at each horizon (``make_task(T)`` builds the task).

    The same seed is used at every horizon, so the curves differ only through ``T``.
    """
    variance: dict[str, list[float]] = {name: [] for name in estimators}
    norm2: dict[str, list[float]] = {name: [] for name in estimators}
    for horizon in horizons:
        task = make_task(horizon)
        for name in estimators:
            generator = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)
            grads = gradient_samples(task, name, gain, std, repeats, num_states, num_samples, generator)
            grads = grads.to(torch.float64)
            variance[name].append(float(grads.var(0).sum()))
            norm2[name].append(float(grads.mean(0).pow(2).sum()))
    return HorizonVariance(
        tuple(horizons),
        {k: tuple(v) for k, v in variance.items()},
        {k: tuple(v) for k, v in norm2.items()},
        num_states * num_samples,
        repeats,
    )
