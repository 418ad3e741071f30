"""variance_curves: variance of independent-sample averages falls as 1/N."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import reparam as rp
from reparam.baselines import LeaveOneOut
from reparam.problems import get_problem


def test_pathwise_variance_falls_as_one_over_n(tmp_path: Path) -> None:
    # N(1, 1), f = x^2, pathwise: d/dmu = 2x (Var 4, mu4 48), d/dsigma = 2 x eps = 2 eps + 2 eps^2
    # (Var 4 E[(eps + eps^2 - 1)^2] = 12, mu4 = 16 E[(eps + eps^2 - 1)^4] = 16 * 123 = 1968).
    # With N samples the trace is 16 / N; its sampling sd at R repeats is at most
    # sqrt((48 - 16) / R) / N + sqrt((1968 - 144) / R) / N (the two coordinates, worst case; for an
    # average of N samples (mu4 - s^4) / N^2 bounds the exact (mu4 - s^4 + 2 (N - 1) s^4) / N^3
    # whenever the kurtosis is at least 3, as it is for both coordinates).
    p = get_problem("normal-quadratic")
    repeats = 4000
    curves = rp.variance_curves(
        p.f,
        p.q,
        p.params,
        {"pathwise": rp.Pathwise(), "loo": rp.ScoreFunction(baseline=LeaveOneOut())},
        num_samples=(1, 4, 16),
        repeats=repeats,
    )
    pathwise = [pt for pt in curves.points if pt.estimator == "pathwise"]
    assert [pt.num_samples for pt in pathwise] == [1, 4, 16]
    for pt in pathwise:
        sd = (math.sqrt(32 / repeats) + math.sqrt(1824 / repeats)) / pt.num_samples
        assert abs(pt.total_variance - 16 / pt.num_samples) < 5 * sd
        assert pt.evaluations == pt.num_samples
    # LeaveOneOut needs 2 samples: N = 1 is skipped
    assert [pt.num_samples for pt in curves.points if pt.estimator == "loo"] == [4, 16]
    for axis in ("num_samples", "evaluations", "seconds"):
        path = curves.plot(tmp_path / f"{axis}.png", against=axis)
        assert path.read_bytes()[:4] == b"\x89PNG"
    assert "| pathwise | 16 |" in curves.to_markdown()
    with pytest.raises(ValueError, match="against"):
        curves.plot(tmp_path / "x.png", against="cost")
