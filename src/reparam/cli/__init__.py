"""``reparam`` command line. Each command lives in its own module and registers itself on
import; add a module and one import line below to add a command."""

from __future__ import annotations

from reparam.cli.app import app


def _register() -> None:
    # Command modules, imported for their registration side effect.
    from reparam.cli import (  # noqa: F401
        bench,
        compare,
        demo,
        evaluate_vae,
        train_bnn,
        train_discrete_vae,
        train_policy,
        train_vae,
        version,
    )


def main() -> None:
    """Entry point of the ``reparam`` console script."""
    _register()
    app()
