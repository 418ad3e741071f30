"""``CompareRow``'s derived figures: round-off rows, z-scores and the cost-adjusted variance."""

from __future__ import annotations

import math

from reparam.diagnostics.compare import HEADER, CompareRow, CompareTable


def _row(
    mean: float, stderr: float, variance: float, exact: float | None, evaluations: int = 1
) -> CompareRow:
    bias = None if exact is None else mean - exact
    return CompareRow("e", "mu", 1, evaluations, 1e-3, mean, stderr, exact, bias, variance, 0.0, "batched")


def test_roundoff_rows_are_zero_and_have_no_z() -> None:
    # A control variate that cancels f exactly: variance 2.6e-31 around a mean of 2.
    row = _row(2.0 + 2.8e-17, 1.1e-17, 2.6e-31, 2.0)
    assert row.roundoff
    assert row.z is None
    assert row.cost_variance == 0.0
    cells = CompareTable([row], {}).cells()[0]
    assert cells[HEADER.index("variance")] == "0"
    assert cells[HEADER.index("bias")] == "0"
    assert cells[HEADER.index("z")] == "-"


def test_z_and_cost_variance_of_an_ordinary_row() -> None:
    row = _row(1.976, 0.023, 1.056, 2.0, evaluations=5)
    assert not row.roundoff
    assert math.isclose(row.z or 0.0, -0.024 / 0.023)
    assert math.isclose(row.cost_variance, 5 * 1.056)
    cells = CompareTable([row], {}).cells()[0]
    assert cells[HEADER.index("z")] == "-1"
    assert cells[HEADER.index("variance × evals")] == "5.28"
