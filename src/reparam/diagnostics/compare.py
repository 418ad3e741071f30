"""``rp.compare``: several estimators side by side on one problem."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from reparam.diagnostics import _engine, _format
from reparam.diagnostics._engine import QLike
from reparam.diagnostics.gradient_stats import ExactLike, GradientStats, gradient_stats
from reparam.estimators.base import CostFn, Estimator, evaluations

if TYPE_CHECKING:
    from rich.table import Table


@dataclass(frozen=True)
class CompareRow:
    """One estimator on one parameter coordinate."""

    estimator: str
    parameter: str
    num_samples: int
    evaluations: int
    seconds: float
    mean: float
    stderr: float
    exact: float | None
    bias: float | None
    variance: float
    snr: float
    method: str

    @property
    def roundoff(self) -> bool:
        """True when the estimates differ only by floating-point round-off (a standard deviation
        below ``ROUNDOFF`` times the mean's size): the variance is zero, and the bias is exact
        up to that precision (a control variate that cancels ``f`` exactly gives this)."""
        scale = max(abs(self.mean), abs(self.exact or 0.0), 1e-300)
        return self.variance <= (ROUNDOFF * scale) ** 2

    @property
    def z(self) -> float | None:
        """``bias / stderr``: how many standard errors the mean is from the exact value (``None``
        without an exact value, or when the estimates agree to round-off)."""
        if self.bias is None or self.roundoff:
            return None
        if self.stderr == 0.0:
            return 0.0 if self.bias == 0.0 else float("inf")
        return self.bias / self.stderr

    @property
    def cost_variance(self) -> float:
        """``variance x evaluations``: the variance of an estimate that spends one evaluation of
        ``f``, the figure to compare estimators of different cost by."""
        return 0.0 if self.roundoff else self.variance * self.evaluations


# Relative standard deviation below which estimates count as equal up to round-off: a few units
# of float32's epsilon (1.2e-7), far above float64's (2.2e-16).
ROUNDOFF = 1e-6

HEADER = [
    "estimator",
    "param",
    "N",
    "evals",
    "mean ± se",
    "exact",
    "bias",
    "z",
    "variance",
    "variance × evals",
    "SNR",
    "time",
]


@dataclass
class CompareTable:
    """What :func:`compare` returns: ``rows`` (one per estimator and parameter coordinate),
    the full :class:`GradientStats` per estimator in ``stats``, and renderers."""

    rows: list[CompareRow]
    stats: dict[str, GradientStats]
    title: str = ""
    equal_cost: bool = False
    budget: int | None = None
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[list[str]]:
        out = []
        for r in self.rows:
            out.append(
                [
                    r.estimator,
                    r.parameter,
                    str(r.num_samples),
                    str(r.evaluations),
                    f"{_format.number(r.mean)} ± {_format.number(r.stderr, 2)}",
                    _format.number(r.exact),
                    "0" if r.roundoff and r.bias is not None else _format.number(r.bias, 2),
                    _format.number(r.z, 2),
                    "0" if r.roundoff else _format.number(r.variance),
                    _format.number(r.cost_variance),
                    "inf" if r.roundoff else _format.number(r.snr, 3),
                    _format.seconds(r.seconds),
                ]
            )
        return out

    def caption(self) -> str:
        repeats = {s.repeats for s in self.stats.values()}
        text = (
            f"{'/'.join(map(str, sorted(repeats)))} estimates each; variance of one estimate; "
            "z = bias / standard error (|z| < 3 is what an unbiased estimator gives 99.7% of the "
            "time); variance × evals compares estimators at equal cost; 0 means equal to round-off"
        )
        if self.equal_cost and self.budget is not None:
            text += f"; equal cost: {self.budget} evaluations of f per estimate"
        return text

    def to_markdown(self) -> str:
        """The table as GitHub-flavoured markdown (with the title and notes)."""
        parts = [f"### {self.title}\n\n" if self.title else "", _format.markdown_table(HEADER, self.cells())]
        parts.append(f"\n{self.caption()}.\n")
        parts += [f"\n* {note}\n" for note in self.notes]
        return "".join(parts)

    def to_rich(self) -> Table:
        """The table as a ``rich.table.Table`` (needs the ``cli`` extra)."""
        from reparam._optional import require

        rich_table = require("rich.table", extra="cli", feature="CompareTable.to_rich")
        table: Table = rich_table.Table(title=self.title or None, caption=self.caption())
        for i, name in enumerate(HEADER):
            table.add_column(name, justify="left" if i < 2 else "right", no_wrap=True)
        previous = None
        for cells in self.cells():
            if previous is not None and cells[0] != previous:
                table.add_section()
            previous = cells[0]
            table.add_row(*cells)
        return table

    def plot(self, path: str | Path, max_coordinates: int = 8) -> Path:
        """Bar charts of the variance of one estimate and of variance x evaluations (the
        variance at equal cost), per estimator and parameter coordinate, on a log scale;
        written as a PNG with matplotlib's Agg backend (needs the ``plots`` extra).

        Rows whose estimates agree to round-off (see :attr:`CompareRow.roundoff`) are drawn as
        a marked zero at the foot of the axis instead of a bar down to ``1e-32``."""
        from reparam._optional import pyplot

        plt = pyplot("CompareTable.plot")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        estimators = list(dict.fromkeys(r.estimator for r in self.rows))
        coords = list(dict.fromkeys(r.parameter for r in self.rows))[:max_coordinates]
        lookup = {(r.estimator, r.parameter): r for r in self.rows}
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
        width = 0.8 / max(1, len(estimators))
        panels = [
            ("variance of one estimate", "variance", lambda r: 0.0 if r.roundoff else r.variance),
            ("at equal cost: variance × evaluations of f", "variance × evaluations", _cost),
        ]
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for ax, (label, ylabel, value) in zip(axes, panels, strict=True):
            positive = [v for r in lookup.values() if r.parameter in coords and (v := value(r)) > 0]
            floor = min(positive) / 4 if positive else 1.0
            for j, name in enumerate(estimators):
                offset = (j - (len(estimators) - 1) / 2) * width
                heights, zeros = [], []
                for i, c in enumerate(coords):
                    row = lookup.get((name, c))
                    v = value(row) if row is not None else 0.0
                    heights.append(v if v > 0 else float("nan"))
                    if row is not None and v == 0.0:
                        zeros.append(i + offset)
                colour = colours[j % len(colours)]
                positions = [i + offset for i in range(len(coords))]
                ax.bar(positions, heights, width=width, label=name, color=colour)
                if zeros:
                    ax.scatter(zeros, [floor] * len(zeros), s=36, color=colour, edgecolors="black", zorder=3)
                    for x in zeros:
                        ax.annotate("0", (x, floor), textcoords="offset points", xytext=(0, 6), ha="center",
                                    fontsize=8)
            if positive:
                ax.set_yscale("log")
                ax.set_ylim(floor / 2, max(positive) * 3)
            ax.set_xticks(range(len(coords)), coords, rotation=30 if len(coords) > 4 else 0)
            ax.set_xlabel("parameter")
            ax.set_ylabel(ylabel)
            ax.set_title(label, fontsize=10)
            ax.grid(axis="y", alpha=0.3)
        if any(r.roundoff for r in self.rows):
            fig.text(0.01, 0.01, "marked 0: zero variance (the estimates agree to round-off)", fontsize=8)
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=min(len(names), 6), fontsize=8, frameon=False)
        fig.suptitle(textwrap.fill(self.title or "gradient estimators compared", 90), fontsize=11)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _cost(row: CompareRow) -> float:
    return row.cost_variance


def _min_samples(estimator: Estimator) -> int:
    return max(1, int(getattr(estimator, "min_samples", 1)))


def samples_for_budget(estimator: Estimator, q: torch.distributions.Distribution, budget: int) -> int:
    """The largest ``num_samples`` whose ``evaluations(estimator, q, num_samples)`` stays
    within ``budget`` (at least the estimator's ``min_samples``). An estimator whose cost does
    not grow with ``num_samples`` (``Exact`` enumerates the support whatever it is given) keeps
    its minimum."""
    low = _min_samples(estimator)
    if evaluations(estimator, q, low) >= budget or evaluations(estimator, q, 2 * low) == evaluations(
        estimator, q, low
    ):
        return low
    high = low
    while evaluations(estimator, q, high * 2) <= budget:
        high *= 2
    hi = high * 2  # evaluations(hi) > budget >= evaluations(high)
    lo = high
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if evaluations(estimator, q, mid) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


def coordinate_names(params: Sequence[Tensor], names: Sequence[str] | None) -> list[list[str]]:
    """``name`` for scalars and ``name[i, j]`` per coordinate otherwise."""
    names = list(names) if names else [f"p{i}" for i in range(len(params))]
    out = []
    for name, p in zip(names, params, strict=True):
        if p.dim() == 0:
            out.append([name])
        else:
            out.append(
                [
                    f"{name}[{', '.join(map(str, idx))}]"
                    for idx in torch.cartesian_prod(*[torch.arange(s) for s in p.shape])
                    .reshape(-1, p.dim())
                    .tolist()
                ]
            )
    return out


def compare(
    f: CostFn,
    q: QLike,
    params: Sequence[Tensor],
    estimators: Mapping[str, Estimator],
    num_samples: int = 1,
    repeats: int = 2000,
    exact: ExactLike | None = None,
    equal_cost: bool = False,
    param_names: Sequence[str] | None = None,
    title: str = "",
    vectorize: bool = True,
) -> CompareTable:
    r"""Run :func:`gradient_stats` for each estimator and tabulate the results.

    Args:
        f, q, params, exact, repeats, vectorize: as for :func:`gradient_stats`.
        estimators: label -> estimator (anything following the ``Estimator`` protocol).
        num_samples: samples per estimate; an estimator needing more (``min_samples``, e.g. a
            leave-one-out baseline needs 2) gets its minimum.
        equal_cost: give every estimator the same number of evaluations of ``f`` per estimate:
            the budget is the largest ``evaluations(estimator, q, num_samples)`` among them, and
            each estimator gets the largest ``num_samples`` within it (so the cheap ones get
            more samples; an ARM-type estimator counts two evaluations per pair).
        param_names: labels for ``params`` (default ``p0, p1, ...``).
        title: a title for the renderings.

    Returns:
        A :class:`CompareTable` with ``rows``, ``stats``, ``to_markdown()``, ``to_rich()`` and
        ``plot(path)``.

    Reference: Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo Gradient Estimation in Machine
    Learning", JMLR 2020, section 8 (comparing estimators at equal cost).
    """
    if not isinstance(estimators, Mapping) or not estimators:
        raise TypeError(
            "estimators must be a non-empty dict of label -> estimator, e.g. "
            "{'pathwise': rp.Pathwise(), 'reinforce': rp.ScoreFunction()}."
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an int >= 1, got {num_samples!r}; e.g. num_samples=1.")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise ValueError(f"repeats must be an int >= 2, got {repeats!r}; e.g. repeats=2000.")
    params = [params] if isinstance(params, Tensor) else list(params)
    if param_names is not None and len(param_names) != len(params):
        raise ValueError(
            f"param_names has {len(param_names)} names for {len(params)} params; give one per parameter."
        )
    built = _engine.build_q(q)
    chosen_n = {name: max(num_samples, _min_samples(est)) for name, est in estimators.items()}
    budget = None
    notes = []
    if equal_cost:
        budget = max(evaluations(est, built, chosen_n[name]) for name, est in estimators.items())
        chosen_n = {name: samples_for_budget(est, built, budget) for name, est in estimators.items()}
    for name in estimators:
        if chosen_n[name] != num_samples and not equal_cost:
            notes.append(f"{name} needs num_samples >= {chosen_n[name]}, so it used {chosen_n[name]}.")
    labels = coordinate_names(params, param_names)
    rows: list[CompareRow] = []
    stats: dict[str, GradientStats] = {}
    for name, est in estimators.items():
        s = gradient_stats(
            f, q, params, est, num_samples=chosen_n[name], repeats=repeats, exact=exact, vectorize=vectorize
        )
        stats[name] = s
        if s.method == "loop" and s.note and vectorize:
            notes.append(f"{name}: {s.note}.")
        for i, coord_labels in enumerate(labels):
            flat = [t[i].reshape(-1) for t in (s.mean, s.stderr, s.variance, s.snr)]
            exact_flat = None if s.exact is None else s.exact[i].reshape(-1)
            bias_flat = None if s.bias is None else s.bias[i].reshape(-1)
            for j, label in enumerate(coord_labels):
                rows.append(
                    CompareRow(
                        estimator=name,
                        parameter=label,
                        num_samples=s.num_samples,
                        evaluations=s.evaluations,
                        seconds=s.seconds,
                        mean=float(flat[0][j]),
                        stderr=float(flat[1][j]),
                        exact=None if exact_flat is None else float(exact_flat[j]),
                        bias=None if bias_flat is None else float(bias_flat[j]),
                        variance=float(flat[2][j]),
                        snr=float(flat[3][j]),
                        method=s.method,
                    )
                )
    return CompareTable(
        rows=rows, stats=stats, title=title, equal_cost=equal_cost, budget=budget, notes=notes
    )
