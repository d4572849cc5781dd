"""The `selfpref` command line: the typer app in ``cli.app``, one module per command group.

Importing this package registers every command on ``app``; ``main`` is the entry point.
"""

from __future__ import annotations

import sys

from selfpref import SelfprefError
from selfpref.cli import basic, build, data, eval, filter, iterate, steer, train  # noqa: F401  (registration)
from selfpref.cli.app import app, err_console

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: user errors become one red line and exit code 2, never a traceback."""
    try:
        app()
    except SelfprefError as exc:
        err_console.print(f"error: {exc}", style="red", markup=False, highlight=False,
                          soft_wrap=True)
        sys.exit(2)
