"""``reparam version``."""

from __future__ import annotations

import typer

from reparam.cli.app import app


@app.command()
def version() -> None:
    """Print the installed reparam and torch versions."""
    import torch

    import reparam

    typer.echo(f"reparam {reparam.__version__} (torch {torch.__version__})")
