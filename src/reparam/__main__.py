"""``python -m reparam`` and the ``reparam`` console script.

A missing extra stops it with one line naming the install command and exit status 1, instead
of a traceback: the ``cli`` extra for the command line itself (``pip install 'reparam[cli]'``),
``plots``, ``data`` or ``rl`` for a command that needs them.
"""

from __future__ import annotations

import sys

from reparam._optional import MissingExtraError


def main() -> None:
    """Run the ``reparam`` command line (:func:`reparam.cli.main`)."""
    try:
        from reparam.cli import main as cli_main

        cli_main()
    except MissingExtraError as error:
        print(f"reparam: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
