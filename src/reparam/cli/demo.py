"""``reparam demo``: the main job."""

from __future__ import annotations

from pathlib import Path

import typer

from reparam._optional import require
from reparam.cli.app import app


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

    console = Console()
    path = run_demo(out, DemoSettings.fast() if fast else DemoSettings(), console)
    console.print(f"\n[bold green]Report written:[/bold green] {path.resolve()}")
