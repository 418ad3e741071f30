"""Number formatting shared by the diagnostics tables."""

from __future__ import annotations

import math


def number(x: float | None, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits; ``-`` for ``None``."""
    if x is None:
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if math.isnan(x):
        return "nan"
    return f"{x:.{digits}g}"


def seconds(x: float) -> str:
    """A duration in s, ms or us."""
    if x >= 1.0:
        return f"{x:.3g} s"
    if x >= 1e-3:
        return f"{x * 1e3:.3g} ms"
    return f"{x * 1e6:.3g} us"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table (first column left-aligned, others right-aligned)."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"
