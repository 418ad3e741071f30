r"""The Bayesian logistic regression study of Mohamed, Rosca, Figurnov & Mnih (JMLR 2020,
section 8): gradient estimators x control variates on the breast-cancer set.

Setting (as in the paper's code, ``deepmind/mc_gradients``): :math:`\mathcal N(0, I)` prior
over the 31 weights (30 standardised features plus a bias), mean-field Gaussian posterior,
ELBO with the KL in closed form and the likelihood of a batch of 32 rows scaled by
``N / 32``, 50 posterior samples per step, 5000 steps of plain SGD with learning rate
:math:`10^{-3}\cos(\frac{\pi}{2}\,t/T)`.

Configurations: {pathwise, score function, measure-valued} x {no control variate, delta
method, moving-average baseline}. A moving-average baseline is a constant, and subtracting a
constant changes neither a pathwise gradient (:math:`\nabla (f - b) = \nabla f`) nor a
measure-valued one (:math:`c(\mathbb E^+[f-b] - \mathbb E^-[f-b]) = c(\mathbb E^+ f - \mathbb
E^- f)`), so, as in the paper's code, it is run for the score function only; the two
remaining cells are identical to "none" by construction. One extra run uses randomised QMC
samples with the pathwise estimator.

Recorded every ``record_every`` steps: the ELBO on the whole training split (1000 samples,
closed-form KL), the KL, train and held-out accuracy of the posterior predictive, and the
variance of one gradient estimate (50 samples, whole training split, w.r.t. the 62
parameters ``loc`` and ``log_scale``) from ``variance_repeats`` independent estimates: mean
and maximum over the 62 coordinates. Along the plain pathwise and the score-function +
moving-average runs the same variance is also measured for every sampler of
:mod:`reparam.estimators.sampling` (antithetic, stratified, RQMC, importance sampling) at the
same parameters and sample count.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from reparam._optional import pyplot
from reparam.baselines import DeltaMethod, MovingAverage
from reparam.data import Splits, breast_cancer
from reparam.estimators.base import Estimator, evaluations
from reparam.estimators.measure_valued import MeasureValued
from reparam.estimators.pathwise import Pathwise
from reparam.estimators.sampling import QMC, Antithetic, ImportanceSampling, Sampler, Stratified
from reparam.estimators.score_function import ScoreFunction
from reparam.models.logistic_regression import BayesianLogisticRegression
from reparam.studies.delta_control import DeltaControlled

ESTIMATORS = ("pathwise", "score-function", "measure-valued")
CONTROLS = ("none", "delta", "moving-average")
SAMPLERS: dict[str, Callable[[], Sampler]] = {
    "antithetic": Antithetic,
    "stratified": Stratified,
    "qmc": QMC,
    "importance": lambda: ImportanceSampling(1.1),
}


@dataclass(frozen=True)
class StudyConfig:
    """Settings of the study; the defaults are the paper's."""

    steps: int = 5000
    batch_size: int = 32
    num_samples: int = 50
    lr: float = 1e-3
    record_every: int = 100
    variance_repeats: int = 20
    eval_samples: int = 1000
    moving_average_decay: float = 0.9
    seed: int = 0
    qmc_run: bool = True

    @classmethod
    def short(cls) -> StudyConfig:
        """A quick version for tests and smoke runs (same model, far fewer steps)."""
        return cls(steps=60, record_every=30, variance_repeats=4, eval_samples=100)

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "batch_size",
            "num_samples",
            "record_every",
            "variance_repeats",
            "eval_samples",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
        if self.variance_repeats < 2:
            raise ValueError("variance_repeats must be >= 2 to estimate a variance.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be finite and > 0, got {self.lr}.")


@dataclass(frozen=True)
class RunSpec:
    estimator: str
    control: str
    sampling: str | None = None

    @property
    def name(self) -> str:
        base = f"{self.estimator} / {self.control}"
        return base if self.sampling is None else f"{base} + {self.sampling}"


def runs(config: StudyConfig) -> list[RunSpec]:
    """The configurations trained: 3 x 3 minus the two no-op moving-average cells, plus RQMC."""
    specs = [
        RunSpec(e, c)
        for e in ESTIMATORS
        for c in CONTROLS
        if not (c == "moving-average" and e != "score-function")
    ]
    if config.qmc_run:
        specs.append(RunSpec("pathwise", "none", "qmc"))
    return specs


def make_estimator(spec: RunSpec, config: StudyConfig) -> Estimator:
    """The estimator object of one configuration (fresh state)."""
    sampling = None if spec.sampling is None else SAMPLERS[spec.sampling]()
    if spec.estimator == "pathwise":
        base: Estimator = Pathwise(sampling=sampling)
        return DeltaControlled(base) if spec.control == "delta" else base
    if spec.estimator == "measure-valued":
        if sampling is not None:
            raise ValueError("the measure-valued estimator takes no sampling= option.")
        return DeltaControlled(MeasureValued()) if spec.control == "delta" else MeasureValued()
    if spec.estimator == "score-function":
        baseline = {
            "none": None,
            "delta": DeltaMethod(),
            "moving-average": MovingAverage(config.moving_average_decay),
        }[spec.control]
        return ScoreFunction(baseline=baseline, sampling=sampling)
    raise ValueError(f"unknown estimator {spec.estimator!r}; choose from {ESTIMATORS}.")


@dataclass
class RunResult:
    """Everything recorded for one configuration (JSON-serialisable)."""

    name: str
    estimator: str
    control: str
    sampling: str | None
    evaluations_per_step: int
    seconds_per_step: float = 0.0
    steps: list[int] = field(default_factory=list)
    elbo: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    variance_mean: list[float] = field(default_factory=list)
    variance_max: list[float] = field(default_factory=list)
    sampler_variance_mean: dict[str, list[float]] = field(default_factory=dict)
    sampler_variance_max: dict[str, list[float]] = field(default_factory=dict)
    diverged_at: int | None = None


def gradient_variance(
    model: BayesianLogisticRegression, estimator: Estimator, data: Splits, config: StudyConfig
) -> tuple[float, float]:
    """Per-coordinate variance of one gradient estimate (``num_samples`` samples, the whole
    training split) from ``variance_repeats`` independent estimates; (mean, max) over the
    coordinates of ``loc`` and ``log_scale``. The estimator is copied, so a moving-average
    baseline is measured in its current state without being updated."""
    estimator = copy.deepcopy(estimator)
    params = list(model.posterior.parameters())
    grads = []
    for _ in range(config.variance_repeats):
        state = copy.deepcopy(estimator)
        value = model.elbo(data.x_train, _labels(data.y_train), state, config.num_samples)
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(value, params)]))
    variance = torch.stack(grads).var(0)
    return float(variance.mean()), float(variance.max())


def _labels(labels: Tensor | None) -> Tensor:
    if labels is None:
        raise ValueError("the logistic-regression study needs labelled data (Splits with y_train/y_test).")
    return labels


def _record(
    result: RunResult,
    step: int,
    model: BayesianLogisticRegression,
    estimator: Estimator,
    spec: RunSpec,
    data: Splits,
    config: StudyConfig,
) -> None:
    with torch.no_grad():
        value = model.elbo(data.x_train, _labels(data.y_train), Pathwise(), config.eval_samples)
        result.elbo.append(float(value))
        result.kl.append(float(model.kl()))
        result.train_accuracy.append(model.accuracy(data.x_train, _labels(data.y_train), config.eval_samples))
        result.test_accuracy.append(model.accuracy(data.x_test, _labels(data.y_test), config.eval_samples))
    result.steps.append(step)
    mean, top = gradient_variance(model, estimator, data, config)
    result.variance_mean.append(mean)
    result.variance_max.append(top)
    measure_samplers = spec.sampling is None and (
        (spec.estimator == "pathwise" and spec.control == "none")
        or (spec.estimator == "score-function" and spec.control == "moving-average")
    )
    if measure_samplers:
        for name, make in SAMPLERS.items():
            if spec.estimator == "pathwise":
                variant: Estimator = Pathwise(sampling=make())
            else:
                assert isinstance(estimator, ScoreFunction)
                variant = ScoreFunction(baseline=estimator.baseline, sampling=make())
            mean, top = gradient_variance(model, variant, data, config)
            result.sampler_variance_mean.setdefault(name, []).append(mean)
            result.sampler_variance_max.setdefault(name, []).append(top)


def train_one(
    spec: RunSpec,
    config: StudyConfig,
    data: Splits,
    on_step: Callable[[int], None] | None = None,
) -> RunResult:
    """Train one configuration from the same initial state and seed; record the metrics."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = BayesianLogisticRegression(data.num_features)
    estimator = make_estimator(spec, config)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    n = data.x_train.shape[0]
    y_train = _labels(data.y_train)
    scale = n / config.batch_size
    result = RunResult(
        spec.name,
        spec.estimator,
        spec.control,
        spec.sampling,
        evaluations(estimator, model.q(), config.num_samples),
    )
    training_seconds = 0.0
    steps_done = 0
    for step in range(config.steps):
        if step % config.record_every == 0:
            _record(result, step, model, estimator, spec, data, config)
        start = time.perf_counter()
        rows = torch.randint(0, n, (config.batch_size,), generator=generator)
        for group in optimizer.param_groups:
            group["lr"] = config.lr * math.cos(0.5 * math.pi * step / config.steps)
        try:
            loss = -model.elbo(data.x_train[rows], y_train[rows], estimator, config.num_samples, scale)
            if not math.isfinite(float(loss.detach())):
                raise FloatingPointError(f"loss is {float(loss.detach())}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise FloatingPointError("non-finite parameters")
        except (FloatingPointError, ValueError):
            # e.g. the plain score function with too few samples: the run is reported as
            # diverged at this step (its later records are missing), the study goes on.
            result.diverged_at = step
            break
        training_seconds += time.perf_counter() - start
        steps_done += 1
        if on_step is not None:
            on_step(step)
    if result.diverged_at is None:
        _record(result, config.steps, model, estimator, spec, data, config)
    elif on_step is not None:
        for step in range(steps_done + 1, config.steps):
            on_step(step)
    result.seconds_per_step = training_seconds / max(steps_done, 1)
    return result


def _atomic_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(payload, stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass
class StudyResult:
    config: StudyConfig
    runs: list[RunResult]

    def by_name(self) -> dict[str, RunResult]:
        return {r.name: r for r in self.runs}


def run_study(
    config: StudyConfig | None = None,
    out: Path | None = None,
    progress: bool = True,
    data: Splits | None = None,
) -> StudyResult:
    """Train every configuration; with ``out``, each finished run is saved atomically to
    ``out/runs/<name>.json`` and skipped when the study is run again with the same config
    (resume)."""
    config = config or StudyConfig()
    data = data or breast_cancer(seed=config.seed)
    specs = runs(config)
    results: list[RunResult] = []
    from reparam.training.progress import training_progress

    with training_progress(disable=not progress) as bar:
        task = bar.add_task("logistic-regression study", total=len(specs) * config.steps, status="")
        for spec in specs:
            saved = None
            if out is not None:
                path = out / "runs" / (spec.name.replace(" / ", "__").replace(" + ", "__") + ".json")
                if path.is_file():
                    payload = json.loads(path.read_text())
                    if payload.get("config") == asdict(config):
                        saved = RunResult(**payload["result"])
            if saved is None:
                bar.update(task, status=spec.name)
                saved = train_one(spec, config, data, on_step=lambda _: bar.advance(task))
                if out is not None:
                    _atomic_json(path, {"config": asdict(config), "result": asdict(saved)})
            else:
                bar.advance(task, config.steps)
            results.append(saved)
    return StudyResult(config, results)


def _average(values: list[float]) -> float:
    """Mean of the recorded values after the first record (step 0 is the shared initial state)."""
    tail = values[1:] or values
    return sum(tail) / len(tail)


def summary_rows(result: StudyResult) -> list[dict[str, Any]]:
    rows = []
    for run in result.runs:
        rows.append(
            {
                "configuration": run.name,
                "final ELBO": run.elbo[-1],
                "final KL": run.kl[-1],
                "train acc": run.train_accuracy[-1],
                "test acc": run.test_accuracy[-1],
                "grad var (mean)": _average(run.variance_mean),
                "grad var (max)": _average(run.variance_max),
                "f evals / step": run.evaluations_per_step,
                "ms / step": 1000 * run.seconds_per_step,
                "status": "ok" if run.diverged_at is None else f"diverged at step {run.diverged_at}",
            }
        )
    return rows


def sampler_rows(result: StudyResult) -> list[dict[str, Any]]:
    rows = []
    for run in result.runs:
        if not run.sampler_variance_mean:
            continue
        rows.append(
            {"estimator": run.name, "sampling": "iid", "grad var (mean)": _average(run.variance_mean)}
        )
        for name, values in run.sampler_variance_mean.items():
            rows.append({"estimator": run.name, "sampling": name, "grad var (mean)": _average(values)})
    return rows


def findings(result: StudyResult) -> list[tuple[str, bool, str]]:
    """The paper's qualitative findings, each checked against this run: (claim, holds, evidence)."""
    runs_ = result.by_name()
    var = {name: _average(run.variance_mean) for name, run in runs_.items()}
    out: list[tuple[str, bool, str]] = []
    none = {e: var[f"{e} / none"] for e in ESTIMATORS}
    lowest = min(none, key=none.__getitem__)
    out.append(
        (
            "pathwise has the lowest gradient variance without control variates",
            lowest == "pathwise",
            ", ".join(f"{e} {v:.3g}" for e, v in none.items()),
        )
    )
    sf_none = none["score-function"]
    sf_best = min(var["score-function / delta"], var["score-function / moving-average"])
    out.append(
        (
            "the score function needs a control variate (its variance without one is >= 10x the pathwise)",
            sf_none >= 10 * none["pathwise"] and sf_best < sf_none,
            f"score function none {sf_none:.3g} vs pathwise {none['pathwise']:.3g}; "
            f"best with a CV {sf_best:.3g}",
        )
    )
    gains = {e: none[e] / var[f"{e} / delta"] for e in ESTIMATORS}
    out.append(
        (
            "the delta method helps the score function most",
            max(gains, key=gains.__getitem__) == "score-function",
            "variance reduction factor " + ", ".join(f"{e} {g:.3g}x" for e, g in gains.items()),
        )
    )
    mvd = runs_["measure-valued / none"]
    per_sample = mvd.evaluations_per_step // result.config.num_samples
    dims = (per_sample - 1) // 4  # 1 + 2 sides x 2 parameters (loc, scale) x D coordinates
    out.append(
        (
            "measure-valued variance is low, but each sample costs 2 evaluations per parameter "
            "coordinate (2D per parameter vector)",
            none["measure-valued"] < none["score-function"] and per_sample == 1 + 4 * dims,
            f"variance {none['measure-valued']:.3g} (score function {none['score-function']:.3g}); "
            f"{per_sample} evaluations per sample (1 + 2 x {dims} for loc + 2 x {dims} for scale) "
            "against 1 for pathwise and score function",
        )
    )
    qmc_name = "pathwise / none + qmc"
    if qmc_name in runs_:
        ratio = var["pathwise / none"] / var[qmc_name]
        out.append(
            (
                "randomised QMC lowers the pathwise variance at equal samples",
                ratio > 1.0,
                f"variance i.i.d. {var['pathwise / none']:.3g} vs RQMC {var[qmc_name]:.3g} "
                f"({ratio:.3g}x lower)",
            )
        )
    accuracies = {name: run.test_accuracy[-1] for name, run in runs_.items()}
    spread = max(accuracies.values()) - min(accuracies.values())
    diverged = [name for name, run in runs_.items() if run.diverged_at is not None]
    out.append(
        (
            "all configurations reach similar held-out accuracy (within 5 points)",
            spread <= 0.05 and not diverged,
            f"test accuracy from {min(accuracies.values()):.3f} to {max(accuracies.values()):.3f}"
            + (f"; diverged: {', '.join(diverged)}" if diverged else ""),
        )
    )
    return out


def to_markdown(result: StudyResult) -> str:
    """The summary table, the sampler table and the findings as markdown."""

    def table(rows: list[dict[str, object]]) -> list[str]:
        if not rows:
            return []
        keys = list(rows[0])
        lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for row in rows:
            cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()]
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    c = result.config
    lines = [
        f"Bayesian logistic regression, breast cancer: batch {c.batch_size}, {c.num_samples} samples, "
        f"{c.steps} SGD steps (lr {c.lr:g}, cosine decay). Gradient variance: one estimate of "
        f"{c.num_samples} samples on the whole training split, {c.variance_repeats} repeats, averaged "
        f"over the {len(result.runs[0].steps) - 1} records after step 0.",
        "",
        *table(summary_rows(result)),
        "",
        "Samplers (same parameters, same sample count, along the run named):",
        "",
        *table(sampler_rows(result)),
        "",
        "Findings:",
        "",
    ]
    for claim, holds, evidence in findings(result):
        lines.append(f"- [{'holds' if holds else 'does NOT hold'}] {claim}: {evidence}")
    return "\n".join(lines) + "\n"


def plot(result: StudyResult, path: Path) -> Path:
    """A figure like the paper's: ELBO, KL, accuracy and gradient variance (mean, max) against
    steps for every configuration, plus the sampler comparison."""
    plt = pyplot()

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    panels = [
        ("elbo", "ELBO (training split)", False),
        ("kl", "KL(q || prior)", False),
        ("test_accuracy", "held-out accuracy", False),
        ("variance_mean", "gradient variance, mean over dims", True),
        ("variance_max", "gradient variance, max over dims", True),
    ]
    styles = {"none": "-", "delta": "--", "moving-average": ":"}
    colours = {"pathwise": "C0", "score-function": "C3", "measure-valued": "C2"}
    for ax, (key, title, log) in zip(axes.flat, panels, strict=False):
        for run in result.runs:
            colour = "C4" if run.sampling else colours[run.estimator]
            ax.plot(run.steps, getattr(run, key), styles[run.control], color=colour, label=run.name, lw=1.4)
        ax.set_title(title)
        ax.set_xlabel("step")
        if log:
            ax.set_yscale("log")
    elbo_ax = axes.flat[0]
    finals = [v for run in result.runs for v in run.elbo[1:]]
    if finals:
        low, high = sorted(finals)[len(finals) // 10], max(finals)
        elbo_ax.set_ylim(low - 0.1 * (high - low + 1), high + 0.1 * (high - low + 1))
    axes.flat[0].legend(fontsize=7)
    ax = axes.flat[5]
    rows = sampler_rows(result)
    labels = [f"{r['estimator'].split(' /')[0]}\n{r['sampling']}" for r in rows]
    ax.bar(range(len(rows)), [float(r["grad var (mean)"]) for r in rows], color="C4")
    ax.set_xticks(range(len(rows)), labels, rotation=60, fontsize=7)
    ax.set_yscale("log")
    ax.set_title("sampling: gradient variance (mean), equal samples")
    fig.suptitle("Bayesian logistic regression (Mohamed et al. 2020, section 8)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
