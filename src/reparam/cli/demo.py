"""``reparam demo``: the main job."""

from __future__ import annotations

from pathlib import Path

import typer

from reparam._optional import require
from reparam.cli.app import app
from reparam.cli.training import usage_error
from reparam.training.errors import RunFolderError
from reparam.training.runs import check_writable


@app.command()
def demo(
    out: Path = typer.Option(
        Path("reparam-demo"), "--out", "-o", help="Folder for the PNG plots and report.md."
    ),
    fast: bool = typer.Option(False, "--fast", help="Small runs (for tests and a quick look)."),
) -> None:
    """The trick end to end on embedded data: estimators compared against exact gradients, a
    Gaussian fitted to data (naive objective vs ELBO), and Bernoulli latents."""
    from rich.console import Console

    from reparam.demo import DemoSettings, run_demo

    require("matplotlib", extra="all", feature="the demo")
    require("sklearn", extra="all", feature="the demo")

    try:
        check_writable(out)
    except RunFolderError as error:
        raise usage_error(error) from None
    console = Console()
    try:
        path = run_demo(out, DemoSettings.fast() if fast else DemoSettings(), console)
    except OSError as error:  # e.g. the disk filled up while writing the plots
        typer.echo(f"Error: cannot write the demo in {out}: {error}", err=True)
        raise typer.Exit(1) from None
    console.print(f"\n[bold green]Report written:[/bold green] {path.resolve()}")
