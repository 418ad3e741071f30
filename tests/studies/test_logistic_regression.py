"""The logistic-regression study, in a tiny configuration: every configuration trains and
records, the findings are computed from the records (not hard-coded), the figure and the
markdown are written, and a second run with the same folder resumes without retraining."""

from __future__ import annotations

from pathlib import Path

import pytest

import reparam.studies.logistic_regression as study
from reparam.data import breast_cancer
from reparam.studies.logistic_regression import (
    RunSpec,
    StudyConfig,
    findings,
    make_estimator,
    plot,
    run_study,
    runs,
    to_markdown,
)

TINY = StudyConfig(steps=4, record_every=2, variance_repeats=2, eval_samples=20, num_samples=20)


def test_configurations() -> None:
    names = [spec.name for spec in runs(StudyConfig())]
    assert len(names) == 8 and "score-function / moving-average" in names
    assert "pathwise / moving-average" not in names  # identical to "none" by construction
    assert "pathwise / none + qmc" in names
    with pytest.raises(ValueError, match="sampling"):
        make_estimator(RunSpec("measure-valued", "none", "qmc"), StudyConfig())
    with pytest.raises(ValueError, match="steps"):
        StudyConfig(steps=0)


def test_tiny_study_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = breast_cancer()
    result = run_study(TINY, out=tmp_path, progress=False, data=data)
    assert len(result.runs) == 8
    for run in result.runs:
        assert run.steps == [0, 2, 4]
        assert len(run.elbo) == len(run.variance_mean) == 3
        assert all(v >= 0 for v in run.variance_mean)
        assert max(run.variance_max) >= max(run.variance_mean)
    # all runs start from the same state: identical step-0 ELBO up to evaluation noise
    first = [run.kl[0] for run in result.runs]
    assert max(first) - min(first) < 1e-6
    pathwise = result.by_name()["pathwise / none"]
    assert set(pathwise.sampler_variance_mean) == {"antithetic", "stratified", "qmc", "importance"}
    assert result.by_name()["measure-valued / none"].evaluations_per_step == 20 * (1 + 4 * 31)
    claims = findings(result)
    assert len(claims) == 6 and all(isinstance(holds, bool) for _, holds, _ in claims)
    text = to_markdown(result)
    assert "Findings" in text and "pathwise / none + qmc" in text
    png = plot(result, tmp_path / "study.png")
    assert png.stat().st_size > 10_000

    # resume: every configuration is loaded from tmp_path/runs, none retrained
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("retrained a finished configuration")

    monkeypatch.setattr(study, "train_one", fail)
    again = run_study(TINY, out=tmp_path, progress=False, data=data)
    assert [r.elbo for r in again.runs] == [r.elbo for r in result.runs]


def test_score_function_variance_far_above_pathwise() -> None:
    # A property the study relies on, measured directly at the initial state: the plain score
    # function's gradient variance on this model is orders of magnitude above the pathwise one.
    data = breast_cancer()
    model = study.BayesianLogisticRegression(data.num_features)
    config = StudyConfig(variance_repeats=8, num_samples=10)
    pathwise, _ = study.gradient_variance(
        model, make_estimator(RunSpec("pathwise", "none"), config), data, config
    )
    score, _ = study.gradient_variance(
        model, make_estimator(RunSpec("score-function", "none"), config), data, config
    )
    assert score > 10 * pathwise


def test_divergence_is_reported_not_raised() -> None:
    # The plain score function with 2 samples and a huge step size blows up within a few
    # steps; the run is marked diverged and the study can go on.
    data = breast_cancer()
    config = StudyConfig(
        steps=40, record_every=20, variance_repeats=2, eval_samples=20, num_samples=2, lr=5.0
    )
    result = study.train_one(RunSpec("score-function", "none"), config, data)
    assert result.diverged_at is not None and result.diverged_at < 40
    assert all(v == v for v in result.elbo)  # recorded values (before divergence) are numbers
