"""A compact terminal rendering of ``rp.compare`` tables for the demo (fits 80 columns)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reparam._optional import require
from reparam.diagnostics import CompareTable

if TYPE_CHECKING:
    from rich.table import Table


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def compact(table: CompareTable) -> Table:
    """estimator, parameter, samples, mean ± standard error, exact, z, variance, variance x
    evaluations of f, time."""
    rich_table = require("rich.table", extra="cli", feature="the demo's tables")
    out: Table = rich_table.Table(title=table.title, title_justify="left")
    for column in ("estimator", "param", "N", "mean ± se", "exact", "z", "variance", "var×evals", "time"):
        out.add_column(column, no_wrap=column in ("estimator", "param"))
    for row in table.rows:
        out.add_row(
            row.estimator,
            row.parameter,
            str(row.num_samples),
            f"{row.mean:.4g} ± {row.stderr:.2g}",
            _g(row.exact),
            "-" if row.z is None else f"{row.z:.2g}",
            "0" if row.roundoff else _g(row.variance),
            _g(row.cost_variance),
            f"{row.seconds * 1e3:.2f} ms",
        )
    return out
