"""``reparam compare``: gradient estimators side by side on a named problem."""

from __future__ import annotations

from pathlib import Path

import typer

from reparam.cli.app import app
from reparam.cli.problem_options import parse_loose, parse_options, plain_docstring, problem_options
from reparam.cli.training import usage_error


def parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE an int, a float, a comma-separated list of floats, or a string
    (a usage error unless ``KEY=VALUE``); problems with declared options are parsed by
    :func:`reparam.cli.problem_options.parse_options` instead."""
    try:
        return parse_loose(text)
    except ValueError as error:
        raise usage_error(error) from None


def _estimator_names(text: str | None, defaults: tuple[str, ...]) -> tuple[str, ...]:
    from reparam.estimators.registry import ESTIMATORS

    names = tuple(n.strip() for n in text.split(",") if n.strip()) if text else defaults
    if not names:
        names = ("pathwise", "reinforce")
    unknown = [n for n in names if n not in ESTIMATORS]
    if unknown:
        known = ", ".join(sorted(ESTIMATORS))
        raise usage_error(f"--estimators: unknown estimator(s) {', '.join(unknown)}; choose from: {known}")
    return names


def _list_problems() -> None:
    """Every problem: its name, full description (the distribution and cost at the defaults,
    then the builder's or runner's docstring) and its ``-O`` options with types and defaults."""
    from rich.console import Console
    from rich.table import Table

    from reparam.problems import PROBLEMS, RUNNERS, get_problem

    table = Table(title="problems for reparam compare (options: -O KEY=VALUE)", show_lines=True)
    table.add_column("name", no_wrap=True)
    table.add_column("description", ratio=3)
    table.add_column("options (default, type)", ratio=2)
    for name in sorted(set(PROBLEMS) | set(RUNNERS)):
        if name in RUNNERS:
            description = plain_docstring(RUNNERS[name].__doc__) or "custom runner"
        else:
            doc = plain_docstring(PROBLEMS[name].__doc__)
            description = get_problem(name).description + (f". {doc}" if doc else "")
        spec = problem_options(name)
        options = "\n".join(o.describe() for o in spec) if spec is not None else "(its own; unchecked)"
        table.add_row(name, description, options or "none")
    Console(width=max(Console().width, 140)).print(table)


@app.command()
def compare(
    problem: str = typer.Option(None, "--problem", "-p", help="Problem name (see --list)."),
    estimators: str = typer.Option(
        None, "--estimators", "-e", help="Comma-separated estimator names; default: the problem's own."
    ),
    repeats: int = typer.Option(2000, "--repeats", "-r", min=2, help="Independent estimates per estimator."),
    num_samples: int = typer.Option(1, "--num-samples", "-n", min=1, help="Samples per estimate."),
    equal_cost: bool = typer.Option(
        False, "--equal-cost", help="Same evaluations of f per estimate for every estimator."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for table.md and variance.png."),
    option: list[str] = typer.Option(
        [], "--option", "-O", help="Problem option KEY=VALUE (repeatable), e.g. -O mu=2 -O sigma=0.5."
    ),
    list_problems: bool = typer.Option(False, "--list", help="List the problems and exit."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
) -> None:
    """Mean ± standard error against the exact gradient, bias, variance, SNR, evaluations of f
    and time per estimate, for several estimators on one named problem."""
    import torch
    from rich.console import Console

    from reparam.diagnostics.compare import compare as compare_estimators
    from reparam.estimators.registry import make_estimator
    from reparam.problems import PROBLEMS, RUNNERS, CompareRequest, get_problem

    if list_problems:
        _list_problems()
        return
    if problem is None:
        raise usage_error("give --problem NAME (see reparam compare --list).")
    if problem not in PROBLEMS and problem not in RUNNERS:
        known = ", ".join(sorted(set(PROBLEMS) | set(RUNNERS)))
        raise usage_error(f"--problem: unknown problem {problem!r}; choose one of: {known}.")
    try:
        options = parse_options(problem, option)
    except ValueError as error:
        raise usage_error(error) from None
    torch.manual_seed(seed)
    if problem in RUNNERS:
        request = CompareRequest(
            problem=problem,
            estimators=_estimator_names(estimators, ()) if estimators else None,
            repeats=repeats,
            num_samples=num_samples,
            equal_cost=equal_cost,
            out=out,
            options=options,
        )
        try:
            RUNNERS[problem](request)
        except ValueError as error:  # an option value the runner rejects (e.g. horizons=0)
            raise usage_error(f"{problem}: {error}") from None
        return
    try:
        instance = get_problem(problem, **options)
    except (TypeError, ValueError) as error:  # e.g. kappa=-1
        raise usage_error(f"-O: {problem}: {error}") from None
    names = _estimator_names(estimators, instance.default_estimators)
    console = Console(width=max(Console().width, 120))
    with console.status(f"[bold]{problem}[/]: {len(names)} estimators x {repeats} estimates ..."):
        table = compare_estimators(
            instance.f,
            instance.q,
            instance.params,
            {name: make_estimator(name) for name in names},
            num_samples=num_samples,
            repeats=repeats,
            exact=instance.exact,
            equal_cost=equal_cost,
            param_names=instance.param_names or None,
            title=f"{problem}: {instance.description}",
        )
    console.print(table.to_rich())
    for note in table.notes:
        console.print(f"[dim]* {note}[/]")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(table.to_markdown())
        table.plot(out / "variance.png")
        console.print(f"wrote {out / 'table.md'} and {out / 'variance.png'}")
