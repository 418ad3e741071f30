"""Policy gradients: score-function, pathwise and deterministic policy gradients on
differentiable control tasks (LQR, pendulum) and REINFORCE on gymnasium's CartPole."""

from reparam.models.policy.cartpole import EpisodeBatch, collect_episodes, evaluate_policy, make_cartpole
from reparam.models.policy.categorical_policy import CategoricalPolicy
from reparam.models.policy.gaussian_policy import (
    GaussianPolicy,
    LinearFeedback,
    linear_gaussian_policy,
    mlp,
    mlp_gaussian_policy,
)
from reparam.models.policy.horizon import (
    HorizonVariance,
    RepeatedLinearFeedback,
    gradient_samples,
    horizon_variance,
    repeated_gradients,
    repeated_linear_gaussian,
)
from reparam.models.policy.lqr import LQR, expected_cost, spectral_radius
from reparam.models.policy.objectives import deterministic_objective, policy_objective, reward_to_go_objective
from reparam.models.policy.pendulum import Pendulum, angle_normalize
from reparam.models.policy.plots import horizon_plot, returns_plot
from reparam.models.policy.reinforce import reinforce_surrogate, reward_to_go
from reparam.models.policy.riccati import optimal_gain, solve_discrete_riccati
from reparam.models.policy.task import DifferentiableTask
from reparam.models.policy.trajectory import TrajectoryDistribution, episode_cost
from reparam.models.policy.updates import UpdateResult, cartpole_update, differentiable_update

__all__ = [
    "LQR",
    "CategoricalPolicy",
    "DifferentiableTask",
    "EpisodeBatch",
    "GaussianPolicy",
    "HorizonVariance",
    "LinearFeedback",
    "Pendulum",
    "RepeatedLinearFeedback",
    "TrajectoryDistribution",
    "UpdateResult",
    "angle_normalize",
    "cartpole_update",
    "collect_episodes",
    "deterministic_objective",
    "differentiable_update",
    "episode_cost",
    "evaluate_policy",
    "expected_cost",
    "gradient_samples",
    "horizon_plot",
    "horizon_variance",
    "linear_gaussian_policy",
    "make_cartpole",
    "mlp",
    "mlp_gaussian_policy",
    "optimal_gain",
    "policy_objective",
    "reinforce_surrogate",
    "repeated_gradients",
    "repeated_linear_gaussian",
    "returns_plot",
    "reward_to_go",
    "reward_to_go_objective",
    "solve_discrete_riccati",
    "spectral_radius",
]
