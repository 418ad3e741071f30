"""``reparam compare --problem logistic-regression``: the Bayesian logistic regression study of
Mohamed et al. (JMLR 2020, section 8), see :mod:`reparam.studies.logistic_regression`.

Options (``-O KEY=VALUE``): ``short=1`` (60 steps, for smoke tests), ``steps``,
``record_every``, ``variance_repeats``, ``samples`` (per step), ``batch_size``, ``lr``,
``seed``, ``qmc_run=0`` (skip the extra RQMC run). ``--out DIR`` writes ``table.md``,
``study.png``, ``results.json`` and one ``runs/*.json`` per finished configuration; running
again with the same ``--out`` and options resumes (finished configurations are loaded).
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import TYPE_CHECKING

from reparam._optional import require
from reparam.problems.base import CompareRequest, register_runner

if TYPE_CHECKING:  # imported lazily at run time
    from reparam.studies.logistic_regression import StudyConfig

_INT_OPTIONS = ("steps", "record_every", "variance_repeats", "batch_size", "seed", "eval_samples")


def study_config(options: dict[str, object]) -> StudyConfig:
    """The study settings from ``-O`` options; unknown keys are an error naming the valid ones."""
    from reparam.studies.logistic_regression import StudyConfig

    options = dict(options)
    short = bool(options.pop("short", 0))
    base = StudyConfig.short() if short else StudyConfig()
    values = asdict(base)
    if "samples" in options:
        options["num_samples"] = options.pop("samples")
    valid = {f.name for f in fields(StudyConfig)} | {"short", "samples"}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for logistic-regression; "
            f"valid: {', '.join(sorted(valid))}."
        )
    for key, value in options.items():
        if key in (*_INT_OPTIONS, "num_samples"):
            value = int(value)  # type: ignore[call-overload]
        elif key == "lr":
            value = float(value)  # type: ignore[arg-type]
        elif key == "qmc_run":
            value = bool(int(value))  # type: ignore[call-overload]
        values[key] = value
    return StudyConfig(**values)


@register_runner("logistic-regression")
def run_logistic_regression(request: CompareRequest) -> None:
    """Bayesian logistic regression study (Mohamed et al. 2020, sec. 8): estimators x control
    variates, ELBO / KL / accuracy / gradient variance through training (-O short=1 for a quick run)."""
    import torch
    require("rich", extra="cli", feature="the logistic-regression runner")
    from rich.console import Console
    from rich.table import Table

    from reparam.studies.logistic_regression import (
        findings,
        plot,
        run_study,
        sampler_rows,
        summary_rows,
        to_markdown,
    )

    config = study_config(request.options)
    console = Console(width=max(Console().width, 140))
    console.print(
        f"[bold]logistic-regression[/]: {config.steps} steps x batch {config.batch_size} x "
        f"{config.num_samples} samples per configuration (use -O short=1 for a quick run)"
    )
    torch.set_num_threads(1)  # tiny tensors: extra intra-op threads only add contention
    result = run_study(config, out=request.out, progress=True)

    for title, rows in (
        ("estimators x control variates", summary_rows(result)),
        ("sampling", sampler_rows(result)),
    ):
        table = Table(title=title)
        for key in rows[0]:
            table.add_column(
                key, justify="left" if key in ("configuration", "estimator", "sampling") else "right"
            )
        for row in rows:
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
        console.print(table)
    console.print("[bold]findings[/] (Mohamed et al. 2020, section 8), checked on this run:")
    for claim, holds, evidence in findings(result):
        mark = "[green]holds[/]" if holds else "[red]does NOT hold[/]"
        console.print(f"  {mark}  {claim}\n         [dim]{evidence}[/]")
    if request.out is not None:
        request.out.mkdir(parents=True, exist_ok=True)
        (request.out / "table.md").write_text(to_markdown(result))
        plot(result, request.out / "study.png")
        payload = {"config": asdict(config), "runs": [asdict(r) for r in result.runs]}
        (request.out / "results.json").write_text(json.dumps(payload))
        console.print(
            f"wrote {request.out / 'table.md'}, {request.out / 'study.png'}, {request.out / 'results.json'}"
        )
