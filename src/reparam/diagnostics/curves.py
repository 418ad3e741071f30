"""Variance against the number of samples and against cost, per estimator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from torch import Tensor

from reparam.diagnostics import _format
from reparam.diagnostics._engine import QLike
from reparam.diagnostics.gradient_stats import ExactLike, gradient_stats
from reparam.estimators.base import CostFn, Estimator

Axis = Literal["num_samples", "evaluations", "seconds"]
AXIS_LABELS = {
    "num_samples": "samples per estimate",
    "evaluations": "evaluations of f per estimate",
    "seconds": "seconds per estimate",
}


@dataclass(frozen=True)
class CurvePoint:
    """One estimator at one ``num_samples``: total variance (trace of the covariance) of one
    estimate and its cost."""

    estimator: str
    num_samples: int
    evaluations: int
    seconds: float
    total_variance: float


@dataclass
class VarianceCurves:
    """What :func:`variance_curves` returns; ``plot(path, against=...)`` draws it."""

    points: list[CurvePoint]
    title: str = ""

    def to_markdown(self) -> str:
        header = ["estimator", "N", "evals", "time", "total variance", "variance x evals"]
        rows = [
            [
                p.estimator,
                str(p.num_samples),
                str(p.evaluations),
                _format.seconds(p.seconds),
                _format.number(p.total_variance),
                _format.number(p.total_variance * p.evaluations),
            ]
            for p in self.points
        ]
        return _format.markdown_table(header, rows)

    def plot(self, path: str | Path, against: Axis = "num_samples") -> Path:
        """Log-log plot of total variance against ``num_samples``, ``evaluations`` or
        ``seconds``, one line per estimator (PNG, matplotlib Agg backend). An unbiased
        estimator averaging independent samples falls with slope -1 against samples."""
        if against not in AXIS_LABELS:
            raise ValueError(f"against must be one of {sorted(AXIS_LABELS)}, got {against!r}.")
        from reparam._optional import pyplot

        plt = pyplot("VarianceCurves.plot")

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for name in dict.fromkeys(p.estimator for p in self.points):
            mine = [p for p in self.points if p.estimator == name and p.total_variance > 0]
            xs = [float(getattr(p, against)) for p in mine]
            ax.plot(xs, [p.total_variance for p in mine], marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(AXIS_LABELS[against])
        ax.set_ylabel("variance of one estimate (trace)")
        ax.set_title(self.title or f"variance against {AXIS_LABELS[against]}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def variance_curves(
    f: CostFn,
    q: QLike,
    params: Sequence[Tensor],
    estimators: Mapping[str, Estimator],
    num_samples: Sequence[int] = (1, 2, 4, 8, 16, 32),
    repeats: int = 1000,
    exact: ExactLike | None = None,
    title: str = "",
) -> VarianceCurves:
    """Total variance of one estimate for each estimator at each ``num_samples`` (skipping
    values below an estimator's ``min_samples``), with its cost in evaluations and seconds.

    Plot it against samples, evaluations of ``f`` or wall time to see which estimator wins at
    equal cost (Mohamed et al., JMLR 2020, section 8).
    """
    if isinstance(num_samples, int):
        num_samples = (num_samples,)
    counts = list(num_samples) if isinstance(num_samples, Sequence) else []
    if not counts or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts):
        raise ValueError(
            f"num_samples must be a non-empty list of ints >= 1, got {num_samples!r}; e.g. "
            "num_samples=(1, 2, 4, 8, 16, 32)."
        )
    if not isinstance(estimators, Mapping) or not estimators:
        raise TypeError(
            "estimators must be a non-empty dict of label -> estimator, e.g. "
            "{'pathwise': rp.Pathwise(), 'reinforce': rp.ScoreFunction()}."
        )
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise ValueError(f"repeats must be an int >= 2, got {repeats!r}; e.g. repeats=1000.")
    points = []
    for name, est in estimators.items():
        low = int(getattr(est, "min_samples", 1))
        for n in num_samples:
            if int(n) < low:
                continue
            s = gradient_stats(f, q, params, est, num_samples=int(n), repeats=repeats, exact=exact)
            points.append(CurvePoint(name, int(n), s.evaluations, s.seconds, s.total_variance))
    return VarianceCurves(points=points, title=title)
