"""rp.compare: rows, equal-cost sample counts, renderings."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch.distributions import Distribution

import reparam as rp
from reparam.baselines import LeaveOneOut
from reparam.diagnostics.compare import samples_for_budget
from reparam.problems import get_problem


class PairCost:
    """A stand-in ARM-type estimator: two evaluations of f per sample pair."""

    def __call__(self, f, q, num_samples):
        return rp.Pathwise()(f, q, num_samples)

    def evaluations(self, q: Distribution, num_samples: int) -> int:
        return 2 * num_samples


def test_rows_and_exact_columns() -> None:
    p = get_problem("normal-quadratic")
    table = rp.compare(
        p.f,
        p.q,
        p.params,
        {"pathwise": rp.Pathwise(), "reinforce": rp.ScoreFunction()},
        repeats=500,
        exact=p.exact,
        param_names=p.param_names,
    )
    assert [(r.estimator, r.parameter) for r in table.rows] == [
        ("pathwise", "mu"),
        ("pathwise", "sigma"),
        ("reinforce", "mu"),
        ("reinforce", "sigma"),
    ]
    for row in table.rows:
        assert row.exact == 2.0 and row.bias == pytest.approx(row.mean - 2.0)
        # unbiased estimators: within 5 standard errors of the exact gradient
        assert abs(row.z) < 5
    # pathwise beats REINFORCE on this smooth f (variance 4 vs 30 for mu)
    assert table.rows[0].variance < table.rows[2].variance


def test_equal_cost_gives_cheap_estimators_more_samples() -> None:
    p = get_problem("normal-quadratic")
    estimators = {
        "pathwise": rp.Pathwise(),
        "mvd": rp.MeasureValued(),
        "pairs": PairCost(),
        "loo": rp.ScoreFunction(baseline=LeaveOneOut()),
    }
    table = rp.compare(p.f, p.q, p.params, estimators, repeats=200, equal_cost=True)
    # measure-valued on a scalar Normal costs 1 + 2*2 = 5 evaluations per sample: the budget
    assert table.budget == 5
    n = {name: s.num_samples for name, s in table.stats.items()}
    assert n == {"pathwise": 5, "mvd": 1, "pairs": 2, "loo": 5}
    assert all(s.evaluations <= 5 for s in table.stats.values())


def test_samples_for_budget_binary_search() -> None:
    q = get_problem("normal-quadratic").q
    assert samples_for_budget(PairCost(), q, 9) == 4
    assert samples_for_budget(PairCost(), q, 1) == 1  # never below one sample
    assert samples_for_budget(rp.Pathwise(), q, 1000) == 1000


def test_min_samples_respected_and_noted() -> None:
    p = get_problem("normal-quadratic")
    table = rp.compare(p.f, p.q, p.params, {"loo": rp.ScoreFunction(baseline=LeaveOneOut())}, repeats=100)
    assert table.stats["loo"].num_samples == 2
    assert any("loo" in note for note in table.notes)


def test_renderings(tmp_path: Path) -> None:
    p = get_problem("bernoulli-offset", dims=2)
    table = rp.compare(
        p.f,
        p.q,
        p.params,
        {"reinforce": rp.ScoreFunction(), "mvd": rp.MeasureValued()},
        repeats=200,
        exact=p.exact,
        param_names=p.param_names,
        title="offset",
    )
    md = table.to_markdown()
    assert md.startswith("### offset") and "| reinforce | phi[0] |" in md and "| mvd | phi[1] |" in md
    rich_table = table.to_rich()
    assert rich_table.row_count == 4
    path = table.plot(tmp_path / "sub" / "variance.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_estimators_argument() -> None:
    p = get_problem("normal-quadratic")
    with pytest.raises(TypeError, match="estimators"):
        rp.compare(p.f, p.q, p.params, [rp.Pathwise()])
    with pytest.raises(ValueError, match="param_names"):
        rp.compare(p.f, p.q, p.params, {"p": rp.Pathwise()}, param_names=["a"])


def test_equal_cost_keeps_estimators_whose_cost_ignores_num_samples() -> None:
    # Exact enumerates the support whatever num_samples is: the budget search must stop.
    import torch
    from torch.distributions import Bernoulli, Independent

    logits = torch.zeros(2, requires_grad=True)
    q = Independent(Bernoulli(logits=logits), 1)
    assert samples_for_budget(rp.Exact(), q, budget=64) == 1
    table = rp.compare(
        lambda b: b.sum(-1),
        q,
        [logits],
        {"exact": rp.Exact(), "reinforce": rp.ScoreFunction()},
        repeats=20,
        equal_cost=True,
    )
    assert {row.estimator for row in table.rows} == {"exact", "reinforce"}
