"""``reparam compare``: gradient estimators side by side on a named problem."""

from __future__ import annotations

from pathlib import Path

import typer

from reparam.cli.app import app


def parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE an int, a float, a comma-separated list of floats, or a string."""
    if "=" not in text:
        raise typer.BadParameter(f"{text!r} is not KEY=VALUE; e.g. --option mu=2.0", param_hint="--option")
    key, raw = (part.strip() for part in text.split("=", 1))
    value: object = raw
    for convert in (int, float):
        try:
            value = convert(raw)
            break
        except ValueError:
            continue
    else:
        if "," in raw:
            try:
                value = [float(x) for x in raw.split(",")]
            except ValueError:
                value = raw
    return key.replace("-", "_"), value


def _estimator_names(text: str | None, defaults: tuple[str, ...]) -> tuple[str, ...]:
    from reparam.estimators.registry import ESTIMATORS

    names = tuple(n.strip() for n in text.split(",") if n.strip()) if text else defaults
    if not names:
        names = ("pathwise", "reinforce")
    unknown = [n for n in names if n not in ESTIMATORS]
    if unknown:
        known = ", ".join(sorted(ESTIMATORS))
        raise typer.BadParameter(f"unknown estimator(s) {', '.join(unknown)}; choose from: {known}")
    return names


def _list_problems() -> None:
    from rich.console import Console
    from rich.table import Table

    from reparam.problems import PROBLEMS, RUNNERS, get_problem

    table = Table(title="problems for reparam compare")
    table.add_column("name", no_wrap=True)
    table.add_column("description")
    for name in sorted(set(PROBLEMS) | set(RUNNERS)):
        if name in RUNNERS:
            description = (RUNNERS[name].__doc__ or "custom runner").strip().splitlines()[0]
        else:
            try:
                description = get_problem(name).description
            except Exception as error:  # a builder needing options
                description = f"(needs options: {error})"
        table.add_row(name, description)
    Console().print(table)


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
        raise typer.BadParameter("give --problem NAME (see reparam compare --list)", param_hint="--problem")
    if problem not in PROBLEMS and problem not in RUNNERS:
        known = ", ".join(sorted(set(PROBLEMS) | set(RUNNERS)))
        raise typer.BadParameter(
            f"unknown problem {problem!r}; choose one of: {known}", param_hint="--problem"
        )
    options = dict(parse_option(o) for o in option)
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
        RUNNERS[problem](request)
        return
    try:
        instance = get_problem(problem, **options)
    except TypeError as error:
        raise typer.BadParameter(f"bad option for {problem}: {error}", param_hint="--option") from None
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
