"""``reparam`` command line. Each command lives in its own module and registers itself on
import; add a module and one import line below to add a command.

The command line needs the ``cli`` extra (typer and rich): importing this package without them
raises :class:`reparam._optional.MissingExtraError` naming ``pip install 'reparam[cli]'``.
"""

from __future__ import annotations

from reparam._optional import require

require("typer", extra="cli", feature="the reparam command line")
require("rich", extra="cli", feature="the reparam command line")

from reparam.cli.app import app  # noqa: E402  (after the extra check above)


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
    """Register every command and run the application (the console script wraps this in
    :func:`reparam.__main__.main`, which turns a missing extra into one line)."""
    _register()
    app()
