"""``reparam`` command line. Each command lives in its own module and registers itself on
import; add a module and one import line below to add a command.

The command line needs the ``cli`` extra (typer and rich): importing this package without them
raises :class:`reparam._optional.MissingExtraError` naming ``pip install 'reparam[cli]'``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

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


def main(args: Sequence[str] | None = None) -> None:
    """Register every command and run the application on ``args`` (default: ``sys.argv[1:]``);
    exits with the command's status. The console script wraps this in
    :func:`reparam.__main__.main`, which turns a missing extra into one line.

    Every usage error (a missing or malformed option, an unknown command, a bad value that a
    command rejects) prints at most two lines on stderr, ``Error: ...`` and where to find help,
    and exits with status 2: click's own errors are caught here rather than drawn as panels."""
    import typer

    # click's exception classes, vendored by newer typer: found through typer's public BadParameter
    bases: dict[str, type[Exception]] = {
        cls.__name__: cls for cls in typer.BadParameter.__mro__ if issubclass(cls, Exception)
    }
    usage_error, click_error = bases["UsageError"], bases["ClickException"]
    _register()
    try:
        code = app(args=list(sys.argv[1:] if args is None else args), standalone_mode=False)
    except usage_error as error:
        print(f"Error: {error.format_message()}", file=sys.stderr)  # type: ignore[attr-defined]
        context = getattr(error, "ctx", None)
        if context is not None:
            print(f"Try '{context.command_path} --help' for help.", file=sys.stderr)
        raise SystemExit(2) from None
    except click_error as error:
        print(f"Error: {error.format_message()}", file=sys.stderr)  # type: ignore[attr-defined]
        raise SystemExit(getattr(error, "exit_code", 1)) from None
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        raise SystemExit(1) from None
    raise SystemExit(code if isinstance(code, int) else 0)
