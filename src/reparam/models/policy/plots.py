"""PNG figures for policy training and the horizon study (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reparam._optional import pyplot
from reparam.models.policy.horizon import HorizonVariance

LABELS = {
    "pathwise": "pathwise (through the simulator)",
    "score-function": "score function, episode return, LOO baseline",
    "score-function-rtg": "score function, reward-to-go, LOO baseline",
}


def returns_plot(
    records: Sequence[dict[str, Any]],
    path: str | Path,
    env: str,
    target: float | None = None,
    title: str | None = None,
) -> Path:
    """Learning curve: CartPole episode return against environment steps (with the mean of
    the last 100 episodes), or the mean episode cost against updates for the control tasks
    (``target``: the optimal cost or the solved threshold, drawn as a dashed line)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    if env == "cartpole":
        x = [r["env_steps"] for r in records]
        ax.plot(x, [r["return"] for r in records], lw=0.8, alpha=0.5, label="batch mean return")
        ax.plot(x, [r["avg100"] for r in records], lw=1.8, label="mean of last 100 episodes")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("return")
    else:
        ax.plot([r["step"] for r in records], [r["cost"] for r in records], lw=1.2, label="mean episode cost")
        if any("eval_cost" in r for r in records):
            ev = [r for r in records if "eval_cost" in r]
            ax.plot(
                [r["step"] for r in ev], [r["eval_cost"] for r in ev], "o-", ms=3, label="evaluation cost"
            )
        ax.set_xlabel("update")
        ax.set_ylabel("episode cost")
        ax.set_yscale("log")
    if target is not None:
        ax.axhline(target, ls="--", color="k", lw=1, label="optimum" if env != "cartpole" else "solved (475)")
    ax.set_title(title or env)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def horizon_plot(results: dict[str, HorizonVariance], path: str | Path) -> Path:
    """Variance of one gradient estimate of ``J_T / T`` against the horizon, one panel per task."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.0), squeeze=False)
    for ax, (task, result) in zip(axes[0], results.items(), strict=True):
        for name, values in result.variance.items():
            ax.plot(result.horizons, values, "o-", label=LABELS.get(name, name))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("horizon T (steps)")
        ax.set_ylabel("total gradient variance (one estimate)")
        ax.set_title(f"{task}: {result.episodes_per_estimate} episodes / estimate, {result.repeats} repeats")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["horizon_plot", "returns_plot"]
