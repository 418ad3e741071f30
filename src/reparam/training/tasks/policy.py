"""The policy-gradient task for ``reparam train policy``: LQR, the pendulum and CartPole with the
score function, pathwise or deterministic policy gradients.

Every random draw comes from torch's global generator (actions), a dedicated generator for the
control tasks' initial states and, for CartPole, an environment seed derived from the update
index; all are saved in (or derived from) the checkpoint, so a resumed run repeats the
uninterrupted one.

Example:
    >>> task = PolicyTask(PolicyOptions(env="lqr"))
    >>> fit(task, RunSettings(out=Path("runs/lqr"), steps=300))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from reparam.baselines import Learned, LeaveOneOut, MovingAverage
from reparam.baselines.base import Baseline
from reparam.models.policy import (
    LQR,
    CategoricalPolicy,
    GaussianPolicy,
    LinearFeedback,
    Pendulum,
    TrajectoryDistribution,
    cartpole_update,
    differentiable_update,
    evaluate_policy,
    expected_cost,
    linear_gaussian_policy,
    make_cartpole,
    mlp,
    mlp_gaussian_policy,
    returns_plot,
)
from reparam.models.policy.cartpole import MAX_STEPS
from reparam.training.engine import Context, RunResult, Task
from reparam.training.errors import OptionsError
from reparam.training.guards import check_finite
from reparam.training.state import load_object_state, object_state

ENVS = ("lqr", "pendulum", "cartpole")
ESTIMATORS = ("pathwise", "reinforce", "reinforce-rtg", "deterministic")
BASELINES = ("none", "moving-average", "leave-one-out", "learned")
SOLVED = 475.0
DEFAULTS: dict[str, dict[str, Any]] = {
    "lqr": {"estimator": "pathwise", "lr": 0.5, "std": 0.3, "horizon": 50, "episodes": 128},
    "pendulum": {
        "estimator": "pathwise",
        "lr": 0.01,
        "std": 0.5,
        "horizon": 30,
        "episodes": 32,
        "max_norm": 10.0,
    },
    "cartpole": {"estimator": "reinforce-rtg", "lr": 0.01, "std": 1.0, "horizon": MAX_STEPS, "episodes": 16},
}


@dataclass(frozen=True)
class PolicyOptions:
    """The environment, estimator and policy of a run (saved in the checkpoint); zeros and ""
    pick the environment's defaults (:meth:`resolved`)."""

    env: str = "lqr"
    estimator: str = ""
    baseline: str = "leave-one-out"
    episodes: int = 0
    samples: int = 4
    lr: float = 0.0
    std: float = 0.0
    learn_std: bool = False
    horizon: int = 0
    hidden: int = 32
    discount: float = 0.99
    max_norm: float = 0.0

    def resolved(self) -> PolicyOptions:
        """The options with the environment-dependent defaults filled in."""
        if self.env not in DEFAULTS:
            raise OptionsError(f"--env must be one of {', '.join(ENVS)}, got {self.env!r}.")
        return replace(self, **{k: v for k, v in DEFAULTS[self.env].items() if not getattr(self, k)})

    def validate(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise OptionsError(f"--estimator must be one of {', '.join(ESTIMATORS)}, got {self.estimator!r}.")
        if self.env == "cartpole" and self.estimator != "reinforce-rtg":
            raise OptionsError(
                "CartPole is not differentiable and has discrete actions: use --estimator reinforce-rtg "
                "(the score function with reward-to-go credit) and pick a --baseline."
            )
        if self.baseline not in BASELINES:
            raise OptionsError(f"--baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}.")
        for name in ("episodes", "samples", "hidden", "horizon"):
            if getattr(self, name) < 1:
                raise OptionsError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}.")
        if self.baseline == "leave-one-out" and self.estimator.startswith("reinforce"):
            needed = self.episodes if self.env == "cartpole" else self.samples
            if needed < 2:
                flag = "--episodes" if self.env == "cartpole" else "--samples"
                raise OptionsError(f"--baseline leave-one-out needs {flag} >= 2, got {needed}.")
        if self.lr <= 0 or self.std <= 0:
            raise OptionsError(f"--lr and --std must be > 0, got {self.lr}, {self.std}.")
        if not 0 < self.discount <= 1:
            raise OptionsError(f"--discount must be in (0, 1], got {self.discount}.")


def _initial_observation(q: Distribution) -> Tensor:
    """The whole-episode baseline's input: the observation of the initial state."""
    assert isinstance(q, TrajectoryDistribution)
    return q.task.observe(q.initial_state)


class PolicyTask(Task):
    """A policy (and a learned baseline's value network) trained on one environment."""

    kind = "policy"
    cpu_only = True
    parallel = "each update draws its own episodes from one environment (and CartPole steps a gymnasium env)"
    mixed_precision = (
        "its networks are tiny and its rollouts run the dynamics step by step, where half-precision "
        "rounding accumulates over the horizon"
    )

    def __init__(self, options: PolicyOptions, plots: bool = False) -> None:
        options = options.resolved()
        options.validate()
        super().__init__(options)
        self.plots = plots

    def setup(self, context: Context) -> None:
        o: PolicyOptions = self.options
        self.context = context
        if context.device.type != "cpu":
            raise OptionsError("train policy runs on the CPU (its environments do); pass --device cpu.")
        if o.env == "lqr":
            self.policy: nn.Module = linear_gaussian_policy(2, 1, o.std, learn_std=o.learn_std)
        elif o.env == "pendulum":
            self.policy = mlp_gaussian_policy(3, 1, o.hidden, o.std, learn_std=o.learn_std)
        else:
            self.policy = CategoricalPolicy(4, 2, o.hidden)
        self.baseline, value_net = self._baseline()
        self.modules = nn.ModuleDict(
            {"policy": self.policy} | ({} if value_net is None else {"value": value_net})
        )
        self.optimizer = torch.optim.Adam(self.modules.parameters(), lr=o.lr)
        self.generator = torch.Generator().manual_seed(context.seed + 7919)
        self.recent: deque[float] = deque(maxlen=100)
        self.env_steps, self.solved_at = 0, cast("int | None", None)
        self.control = {"lqr": LQR, "pendulum": Pendulum}.get(o.env)
        self.control_task = None if self.control is None else self.control(horizon=o.horizon)
        self.env = make_cartpole(o.episodes) if o.env == "cartpole" else None

    def _baseline(self) -> tuple[Baseline | None, nn.Module | None]:
        """The baseline object and, for ``learned``, its value network (trained alongside)."""
        o: PolicyOptions = self.options
        if o.baseline in ("none", "moving-average", "leave-one-out"):
            return {"none": None, "moving-average": MovingAverage(0.9), "leave-one-out": LeaveOneOut()}[
                o.baseline
            ], None
        if o.estimator == "reinforce":  # whole-episode credit: a function of the initial observation
            features = 2 if o.env == "lqr" else 3
            module = mlp(features, 1, 64)
            return Learned(module, features=_initial_observation), module
        features = 5 if o.env == "cartpole" else (3 if o.env == "lqr" else 4)  # (observation, t / T)
        module = mlp(features, 1, 64)
        return Learned(module), module

    def module(self) -> nn.Module:
        return self.modules

    def learning_rate(self, step: int) -> float:
        """Constant for CartPole; for the control tasks a cosine decay from ``lr`` to ``lr / 20``
        over the run's steps (the noisy gradients then settle near the optimum)."""
        if self.options.env == "cartpole":
            return float(self.options.lr)
        t = min(step / self.context.steps, 1.0)
        return float(self.options.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))))

    def train_step(self, step: int, model: nn.Module, world: Any, device: torch.device) -> dict[str, float]:
        o: PolicyOptions = self.options
        for group in self.optimizer.param_groups:  # type: ignore[union-attr]
            group["lr"] = self.learning_rate(step)
        if self.env is not None:
            seed = self.context.seed * 1_000_003 + step
            assert self.optimizer is not None
            result = cartpole_update(
                self.env, self.policy, self.optimizer, self.baseline, o.discount, seed=seed
            )
            self.recent.extend(result.episode_returns)
        else:
            assert self.control_task is not None and isinstance(self.policy, GaussianPolicy)
            result = differentiable_update(
                self.control_task,
                self.policy,
                self.optimizer,  # type: ignore[arg-type]
                o.estimator,
                o.episodes,
                o.samples,
                self.baseline,
                o.max_norm or None,
                self.generator,
            )
        check_finite(result.cost, step + 1)
        self.env_steps += result.env_steps
        if self.env is None:
            return {"cost": result.cost}
        average = float(np.mean(self.recent))
        if self.solved_at is None and len(self.recent) == self.recent.maxlen and average >= SOLVED:
            self.solved_at = self.env_steps
        return {"cost": result.cost, "return": -result.cost, "avg100": average}

    def record(self, step: int) -> dict[str, float]:
        return {"env_steps": self.env_steps} if self.env is not None else {}

    def stop_reason(self) -> str | None:
        return "solved" if self.solved_at is not None else None

    def status(self, metrics: dict[str, float]) -> str:
        if "avg100" in metrics:
            return f"avg100 {metrics['avg100']:6.1f}  env steps {self.env_steps}"
        return f"cost {metrics.get('cost', math.nan):9.4f}"

    def evaluate(self) -> dict[str, float]:
        """LQR: the exact expected cost; pendulum: the mean cost of the mean policy over 256 fixed
        initial states; CartPole: the mean return of 100 fresh episodes."""
        o: PolicyOptions = self.options
        if o.env == "lqr":
            return {"eval_cost": self._lqr()["eval_cost"]}
        if o.env == "pendulum":
            from reparam.models.policy import deterministic_objective

            x0 = Pendulum().initial_state(256, torch.Generator().manual_seed(2024))
            with torch.no_grad():
                return {
                    "eval_cost": float(deterministic_objective(Pendulum(horizon=o.horizon), self.policy, x0))
                }
        returns = evaluate_policy(self.policy, episodes=100, seed=10_000 + self.context.seed)
        return {"eval_return": float(returns.mean()), "eval_min": float(returns.min())}

    def _lqr(self) -> dict[str, Any]:
        o: PolicyOptions = self.options
        lqr = LQR(horizon=o.horizon)
        assert isinstance(self.policy, GaussianPolicy) and isinstance(self.policy.mean, LinearFeedback)
        K = self.policy.mean.K.detach().double()
        sigma = 0.0 if o.estimator == "deterministic" else float(self.policy.log_std.exp()[0])
        cost, optimum = float(expected_cost(lqr, K, sigma)), lqr.optimal_cost(sigma)
        return {
            "eval_cost": cost,
            "optimal_cost": optimum,
            "relative_gap": cost / optimum - 1.0,
            "K": K.flatten().tolist(),
            "K_star": lqr.K_star.flatten().tolist(),
            "sigma": sigma,
        }

    def state_dict(self) -> dict[str, Any]:
        assert self.optimizer is not None
        return {
            "modules": self.modules.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": None if self.baseline is None else object_state(self.baseline),
            "generator": self.generator.get_state(),
            "env_steps": self.env_steps,
            "recent": list(self.recent),
            "solved_at": self.solved_at,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.optimizer is not None
        self.modules.load_state_dict(state["modules"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.baseline is not None and not isinstance(self.baseline, Learned):
            load_object_state(self.baseline, state["baseline"])
        self.generator.set_state(state["generator"])
        self.env_steps, self.solved_at = int(state["env_steps"]), state["solved_at"]
        self.recent.extend(state["recent"])

    def finish(self, out: Path, result: RunResult) -> list[Path]:
        """``summary.json`` (final evaluation) and ``returns.png``."""
        o: PolicyOptions = self.options
        if self.env is not None:
            self.env.close()
        summary: dict[str, Any] = {
            **asdict(o),
            "updates": result.step,
            "status": result.status,
            "baseline": o.baseline if o.estimator.startswith("reinforce") else None,
        }
        if o.env == "cartpole":
            summary.update(env_steps=self.env_steps, solved_at_env_steps=self.solved_at)
            summary["avg100_training"] = float(np.mean(self.recent)) if self.recent else math.nan
        summary.update(self._lqr() if o.env == "lqr" else self.evaluate())
        path = out / "summary.json"
        path.write_text(json.dumps(summary, indent=2))
        if not self.plots:
            return [path]
        from reparam.training.metrics import METRICS_FILE, MetricsLog

        target = None
        if o.env == "lqr" and not o.learn_std:
            target = LQR(horizon=o.horizon).optimal_cost(0.0 if o.estimator == "deterministic" else o.std)
        elif o.env == "cartpole":
            target = SOLVED
        title = f"{o.env}: {o.estimator}" + (
            f", baseline {o.baseline}" if o.estimator.startswith("reinforce") else ""
        )
        records = MetricsLog(out / METRICS_FILE).read()
        return [path, returns_plot(records, out / "returns.png", o.env, target, title)]
