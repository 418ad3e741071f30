"""``reparam train policy``: policy gradients on LQR, the pendulum and CartPole.

Every random draw comes from torch's global generator (actions), a dedicated generator for the
initial states of the control tasks, and, for CartPole, an environment seed derived from the
update index; all are saved in (or derived from) the checkpoint, so a resumed run repeats the
uninterrupted one.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from rich.console import Console
from torch import Tensor, nn
from torch.distributions import Distribution

from reparam._optional import require
from reparam.baselines import Learned, LeaveOneOut, MovingAverage
from reparam.baselines.base import Baseline
from reparam.cli.app import train_app
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
from reparam.training import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    GracefulInterrupt,
    MetricsLog,
    NonFiniteLossError,
    check_finite,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    training_progress,
)

ENVS = ("lqr", "pendulum", "cartpole")
ESTIMATORS = ("pathwise", "reinforce", "reinforce-rtg", "deterministic")
BASELINES = ("none", "moving-average", "leave-one-out", "learned")
SOLVED = 475.0
RESUMABLE = ("out", "progress", "threads", "checkpoint_every")


@dataclass(frozen=True)
class PolicyOptions:
    """Everything that defines a run (saved in the checkpoint)."""

    out: str
    env: str = "lqr"
    estimator: str = ""  # "" picks the environment's default
    baseline: str = "leave-one-out"
    steps: int = 300
    episodes: int = 0  # 0 picks the environment's default
    samples: int = 4
    lr: float = 0.0  # 0 picks the environment's default
    std: float = 0.0  # 0 picks the environment's default
    learn_std: bool = False
    horizon: int = 0  # 0 picks the environment's default
    hidden: int = 32
    discount: float = 0.99
    max_norm: float = 0.0
    seed: int = 0
    eval_every: int = 25
    checkpoint_every: int = 25
    progress: bool = True
    threads: int = 1

    def resolved(self) -> PolicyOptions:
        """Fill the environment-dependent defaults."""
        defaults = {
            "lqr": {"estimator": "pathwise", "lr": 0.5, "std": 0.3, "horizon": 50, "episodes": 128},
            "pendulum": {
                "estimator": "pathwise",
                "lr": 0.01,
                "std": 0.5,
                "horizon": 30,
                "episodes": 32,
                "max_norm": 10.0,
            },
            "cartpole": {
                "estimator": "reinforce-rtg",
                "lr": 0.01,
                "std": 1.0,
                "horizon": MAX_STEPS,
                "episodes": 16,
            },
        }
        if self.env not in defaults:
            raise typer.BadParameter(f"--env must be one of {ENVS}, got {self.env!r}.")
        values = asdict(self)
        for key, default in defaults[self.env].items():
            if not values[key]:
                values[key] = default
        return PolicyOptions(**values)

    def validate(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise typer.BadParameter(f"--estimator must be one of {ESTIMATORS}, got {self.estimator!r}.")
        if self.env == "cartpole" and self.estimator != "reinforce-rtg":
            raise typer.BadParameter(
                "CartPole is not differentiable and has discrete actions: use --estimator reinforce-rtg "
                "(the score function with reward-to-go credit) and pick a --baseline."
            )
        if self.baseline not in BASELINES:
            raise typer.BadParameter(f"--baseline must be one of {BASELINES}, got {self.baseline!r}.")
        for name in ("steps", "episodes", "samples", "eval_every", "hidden", "horizon"):
            if getattr(self, name) < 1:
                raise typer.BadParameter(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}."
                )
        if self.baseline == "leave-one-out" and self.estimator.startswith("reinforce"):
            needed = self.episodes if self.env == "cartpole" else self.samples
            if needed < 2:
                flag = "--episodes" if self.env == "cartpole" else "--samples"
                raise typer.BadParameter(f"--baseline leave-one-out needs {flag} >= 2, got {needed}.")
        if self.lr <= 0 or self.std <= 0:
            raise typer.BadParameter(f"--lr and --std must be > 0, got {self.lr}, {self.std}.")
        if not 0 < self.discount <= 1:
            raise typer.BadParameter(f"--discount must be in (0, 1], got {self.discount}.")


@dataclass
class PolicyRun:
    """Where a run stopped and what it reached."""

    step: int
    status: str  # "done", "solved", "interrupted", "nonfinite"
    out: Path
    summary: dict[str, Any]


def make_task(options: PolicyOptions) -> LQR | Pendulum:
    if options.env == "lqr":
        return LQR(horizon=options.horizon)
    return Pendulum(horizon=options.horizon)


def make_policy(options: PolicyOptions) -> nn.Module:
    if options.env == "lqr":
        return linear_gaussian_policy(2, 1, options.std, learn_std=options.learn_std)
    if options.env == "pendulum":
        return mlp_gaussian_policy(3, 1, options.hidden, options.std, learn_std=options.learn_std)
    return CategoricalPolicy(4, 2, options.hidden)


def make_baseline(options: PolicyOptions) -> tuple[Baseline | None, nn.Module | None]:
    """The baseline object and, for ``learned``, its value network (trained alongside)."""
    if options.baseline == "none":
        return None, None
    if options.baseline == "moving-average":
        return MovingAverage(0.9), None
    if options.baseline == "leave-one-out":
        return LeaveOneOut(), None
    if options.estimator == "reinforce":
        # Whole-episode credit: the baseline is a function of the initial state's observation.
        features = 2 if options.env == "lqr" else 3
        module = mlp(features, 1, 64)
        return Learned(module, features=_initial_observation), module
    # Reward-to-go credit: a value function of (observation, t / T).
    features = 5 if options.env == "cartpole" else (3 if options.env == "lqr" else 4)
    module = mlp(features, 1, 64)
    return Learned(module), module


def _initial_observation(q: Distribution) -> Tensor:
    """The whole-episode baseline's input: the observation of the initial state."""
    assert isinstance(q, TrajectoryDistribution)
    return q.task.observe(q.initial_state)


def evaluate(options: PolicyOptions, policy: nn.Module) -> dict[str, Any]:
    """LQR: the exact expected cost and the optimum; pendulum: the mean cost of the mean
    policy over 256 fixed initial states; CartPole: the mean return of 100 fresh episodes."""
    if options.env == "lqr":
        lqr = LQR(horizon=options.horizon)
        assert isinstance(policy, GaussianPolicy) and isinstance(policy.mean, LinearFeedback)
        K = policy.mean.K.detach().double()
        sigma = 0.0 if options.estimator == "deterministic" else float(policy.log_std.exp()[0])
        cost, optimum = float(expected_cost(lqr, K, sigma)), lqr.optimal_cost(sigma)
        return {
            "eval_cost": cost,
            "optimal_cost": optimum,
            "relative_gap": cost / optimum - 1.0,
            "K": K.flatten().tolist(),
            "K_star": lqr.K_star.flatten().tolist(),
            "sigma": sigma,
        }
    if options.env == "pendulum":
        from reparam.models.policy import deterministic_objective

        x0 = Pendulum().initial_state(256, torch.Generator().manual_seed(2024))
        with torch.no_grad():
            cost = float(deterministic_objective(Pendulum(horizon=options.horizon), policy, x0))
            # gymnasium's Pendulum-v1 episode (200 steps) whatever the training horizon
            cost_200 = float(deterministic_objective(Pendulum(horizon=200), policy, x0))
        return {"eval_cost": cost, "eval_cost_200_steps": cost_200}
    returns = evaluate_policy(policy, episodes=100, seed=10_000 + options.seed)
    return {"eval_return": float(returns.mean()), "eval_min": float(returns.min())}


def learning_rate(options: PolicyOptions, step: int) -> float:
    """Constant for CartPole; for the control tasks a cosine decay from ``lr`` to ``lr / 20``
    over ``--steps`` (the noisy gradients then settle near the optimum)."""
    if options.env == "cartpole":
        return options.lr
    t = min(step / options.steps, 1.0)
    return options.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def _save(path: Path, options: PolicyOptions, state: dict[str, Any]) -> None:
    save_checkpoint(path, {"kind": "policy", "options": asdict(options), **state, "rng": rng_state()})


def train(options: PolicyOptions, resume: bool = False, console: Console | None = None) -> PolicyRun:
    """Run (or resume) policy training; see :func:`train_policy` for the command line."""
    options = options.resolved()
    options.validate()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint, metrics = out / CHECKPOINT_FILE, MetricsLog(out / METRICS_FILE)
    torch.set_num_threads(options.threads)
    seed_everything(options.seed)
    policy = make_policy(options)
    baseline, value_net = make_baseline(options)
    params = list(policy.parameters()) + ([] if value_net is None else list(value_net.parameters()))
    optimizer = torch.optim.Adam(params, lr=options.lr)
    generator = torch.Generator().manual_seed(options.seed + 7919)
    recent: deque[float] = deque(maxlen=100)
    step, env_steps, solved_at = 0, 0, None
    if resume:
        state = load_checkpoint(checkpoint)
        saved = {k: v for k, v in state["options"].items() if k not in RESUMABLE}
        current = {k: v for k, v in asdict(options).items() if k not in RESUMABLE}
        if saved != current:
            changed = sorted(k for k in current if saved.get(k) != current[k])
            raise typer.BadParameter(
                f"--resume with different options {changed}; rerun with the original ones "
                "(only --out, --threads, --checkpoint-every and --progress may change; --steps sets the "
                "learning-rate schedule)."
            )
        policy.load_state_dict(state["policy"])
        if value_net is not None:
            value_net.load_state_dict(state["value_net"])
        if isinstance(baseline, MovingAverage):
            baseline.steps, baseline._average = state["moving_average"]
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step, env_steps, solved_at = int(state["step"]), int(state["env_steps"]), state["solved_at"]
        recent.extend(state["recent"])
        set_rng_state(state["rng"])
        metrics.truncate_after(step)
    else:
        metrics.path.unlink(missing_ok=True)

    def snapshot() -> dict[str, Any]:
        return {
            "policy": policy.state_dict(),
            "value_net": None if value_net is None else value_net.state_dict(),
            "moving_average": (baseline.steps, baseline._average)
            if isinstance(baseline, MovingAverage)
            else None,
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "step": step,
            "env_steps": env_steps,
            "recent": list(recent),
            "solved_at": solved_at,
        }

    if not resume:
        _save(checkpoint, options, snapshot())
    task = None if options.env == "cartpole" else make_task(options)
    env = make_cartpole(options.episodes) if options.env == "cartpole" else None
    console = console or Console(stderr=True)
    status = "done"
    try:
        with (
            GracefulInterrupt() as interrupt,
            training_progress(console, disable=not options.progress) as bar,
        ):
            bar_task = bar.add_task(
                f"train policy ({options.env})", total=options.steps, completed=step, status=""
            )
            while step < options.steps:
                if interrupt.requested:
                    status = "interrupted"
                    break
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(options, step)
                if env is not None:
                    seed = options.seed * 1_000_003 + step
                    result = cartpole_update(env, policy, optimizer, baseline, options.discount, seed=seed)
                    recent.extend(result.episode_returns)
                else:
                    assert task is not None and isinstance(policy, GaussianPolicy)
                    result = differentiable_update(
                        task,
                        policy,
                        optimizer,
                        options.estimator,
                        options.episodes,
                        options.samples,
                        baseline,
                        options.max_norm or None,
                        generator,
                    )
                check_finite(result.cost, step + 1)
                step += 1
                env_steps += result.env_steps
                record: dict[str, Any] = {"step": step, "cost": result.cost}
                if env is not None:
                    average = float(np.mean(recent))
                    record.update({"return": -result.cost, "avg100": average, "env_steps": env_steps})
                    if solved_at is None and len(recent) == recent.maxlen and average >= SOLVED:
                        solved_at = env_steps
                        status = "solved"
                    text = f"avg100 {average:6.1f}  env steps {env_steps}"
                else:
                    if step % options.eval_every == 0 or step == options.steps:
                        record.update(
                            {k: v for k, v in evaluate(options, policy).items() if k == "eval_cost"}
                        )
                    text = f"cost {result.cost:9.4f}"
                metrics.write(record)
                bar.update(bar_task, completed=step, status=text)
                if step % options.checkpoint_every == 0:
                    _save(checkpoint, options, snapshot())
                if status == "solved":
                    break
    except NonFiniteLossError as error:
        console.print(f"[red]{error}[/red] ({checkpoint})")
        return PolicyRun(step, "nonfinite", out, {})
    finally:
        if env is not None:
            env.close()
    _save(checkpoint, options, snapshot())
    summary: dict[str, Any] = {
        "env": options.env,
        "estimator": options.estimator,
        "baseline": options.baseline if options.estimator.startswith("reinforce") else None,
        "updates": step,
        "status": status,
    }
    if options.env == "cartpole":
        summary.update(
            {
                "env_steps": env_steps,
                "solved_at_env_steps": solved_at,
                "avg100_training": float(np.mean(recent)) if recent else math.nan,
            }
        )
    summary.update(evaluate(options, policy))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return PolicyRun(step, status, out, summary)


def plot(out: Path) -> Path:
    """``returns.png`` of the run in ``out``."""
    state = load_checkpoint(out / CHECKPOINT_FILE)
    options = PolicyOptions(**state["options"])
    target = None
    if options.env == "lqr":
        sigma = 0.0 if options.estimator == "deterministic" else options.std
        target = None if options.learn_std else LQR(horizon=options.horizon).optimal_cost(sigma)
    elif options.env == "cartpole":
        target = SOLVED
    title = f"{options.env}: {options.estimator}"
    if options.estimator.startswith("reinforce"):
        title += f", baseline {options.baseline}"
    records = MetricsLog(out / METRICS_FILE).read()
    return returns_plot(records, out / "returns.png", options.env, target, title)


@train_app.command("policy")
def train_policy(
    out: Path = typer.Option(..., "--out", help="Folder for checkpoint.pt, metrics, returns.png."),
    env: str = typer.Option("lqr", help="lqr | pendulum | cartpole"),
    estimator: str = typer.Option(
        "",
        help="pathwise | reinforce | reinforce-rtg | deterministic (default: pathwise, cartpole: rtg).",
    ),
    baseline: str = typer.Option(
        "leave-one-out", help="For reinforce*: none | moving-average | leave-one-out | learned."
    ),
    steps: int = typer.Option(300, help="Updates (CartPole stops early once solved)."),
    episodes: int = typer.Option(
        0,
        help="Initial states per update (CartPole: parallel episodes per update); 0: lqr 128, pendulum 32, "
        "cartpole 16.",
    ),
    samples: int = typer.Option(
        4, help="Episodes per initial state (control tasks; leave-one-out needs >= 2)."
    ),
    lr: float = typer.Option(0.0, help="Adam learning rate (0: the environment's default)."),
    std: float = typer.Option(
        0.0, help="Gaussian policy's standard deviation (0: the environment's default)."
    ),
    learn_std: bool = typer.Option(False, "--learn-std/--fixed-std", help="Train the policy's log-std too."),
    horizon: int = typer.Option(
        0, help="Episode length of the control tasks (0: default, lqr 50, pendulum 30)."
    ),
    hidden: int = typer.Option(32, help="Hidden width of the MLP policies."),
    discount: float = typer.Option(0.99, help="Discount of the reward-to-go (CartPole and reinforce-rtg)."),
    max_norm: float = typer.Option(
        0.0, help="Clip the gradient norm (0: environment's default; pendulum 10)."
    ),
    seed: int = typer.Option(0),
    eval_every: int = typer.Option(25, help="Evaluate the control tasks every N updates."),
    checkpoint_every: int = typer.Option(25, help="Checkpoint every N updates (and at the end)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.pt."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    threads: int = typer.Option(1, help="torch CPU threads (1 is fastest on a shared, busy machine)."),
) -> None:
    """Train a policy with the score function, pathwise or deterministic policy gradients."""
    require("matplotlib", extra="plots", feature="train policy")
    options = PolicyOptions(
        out=str(out),
        env=env,
        estimator=estimator,
        baseline=baseline,
        steps=steps,
        episodes=episodes,
        samples=samples,
        lr=lr,
        std=std,
        learn_std=learn_std,
        horizon=horizon,
        hidden=hidden,
        discount=discount,
        max_norm=max_norm,
        seed=seed,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        progress=progress,
        threads=threads,
    )
    run = train(options, resume=resume)
    if run.status == "nonfinite":
        raise typer.Exit(1)
    typer.echo(f"wrote {plot(out)}")
    typer.echo(json.dumps(run.summary, indent=2))
    if run.status == "interrupted":
        typer.echo("interrupted: checkpoint saved; continue with the same command plus --resume.")
        raise typer.Exit(130)
