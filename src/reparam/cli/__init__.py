"""``reparam`` command line. Each command lives in its own module and registers itself on
import; add a module and one import line below to add a command."""

from __future__ import annotations

from reparam.cli.app import app


def _register() -> None:
    # Command modules, imported for their registration side effect.
    from reparam.cli import demo, version  # noqa: F401
    from reparam.cli import train_vae  # noqa: F401
    from reparam.cli import evaluate_vae  # noqa: F401
    from reparam.cli import train_policy  # noqa: F401
    from reparam.cli import compare  # noqa: F401
    from reparam.cli import bench  # noqa: F401
    from reparam.cli import train_bnn  # noqa: F401
    from reparam.cli import train_discrete_vae  # noqa: F401


def main() -> None:
    """Entry point of the ``reparam`` console script."""
    _register()
    app()
