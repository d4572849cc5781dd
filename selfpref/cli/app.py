"""The typer app and what the command modules share: consoles, range and list flags, the command line.

Command modules import this module; it imports none of them (they register on ``app`` when
``selfpref.cli`` loads them), so the CLI has no import cycle.
"""

from __future__ import annotations

import re
import shlex
import sys
from typing import Any

import typer
from rich.console import Console

from selfpref import SelfprefError
from selfpref.api.checks import check_models  # noqa: F401  (re-exported: `ask` checks its --model)

# typer >= 0.2x vendors click (typer._click): its exceptions are that module's classes, not the
# `click` package's (an `except click.UsageError` never catches them).
click_errors: Any = sys.modules[typer.BadParameter.__module__]

app = typer.Typer(
    name="selfpref",
    help="A language model as its own preference-data factory: build, filter, card, push, "
    "inspect and train on synthetic preference datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(soft_wrap=True)  # long lines stay whole in pipes and logs
err_console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", help="Also show other libraries' warnings, "
                                 "progress bars and per-step logs (always kept in the log file "
                                 "beside the output); may be given anywhere on the line."),
) -> None:
    """A language model as its own preference-data factory: build, filter, card, push, inspect
    and train on synthetic preference datasets."""


def bounded(low: float | None = None, high: float | None = None, *, low_open: bool = False,
            then: Any = None) -> Any:
    """A click callback that refuses a number outside [low, high] (``low_open``: (low, high]),
    naming the value and the range; ``then`` is called afterwards (e.g. to record flag order)."""
    def check(ctx: typer.Context, param: Any, value: Any) -> Any:
        if value is not None and not isinstance(value, bool):
            too_low = low is not None and (value <= low if low_open else value < low)
            too_high = high is not None and value > high
            if too_low or too_high:
                if low is not None and high is not None:
                    span = f"{'(' if low_open else '['}{low:g}, {high:g}]"
                elif low is not None:
                    span = f"{'>' if low_open else '>='} {low:g}"
                else:
                    span = f"<= {high:g}"
                raise typer.BadParameter(f"{value} is not {'in ' if high is not None and low is not None else ''}{span}")
        return then(ctx, param, value) if then else value
    return check


def out(text: str) -> None:
    """Print text as is (JSON, a version) to the user's stdout, even while output is captured."""
    console.out(text, highlight=False)


OVERWRITE_HELP = "Replace what is at --output (a dataset, or any file or folder: its contents are deleted)."


def number_list(text: str | None, flag: str, cast: type, example: str) -> list | None:
    """``"0.5,0.25"`` -> ``[0.5, 0.25]`` for a comma-separated flag; None when not given."""
    if not text:
        return None
    try:
        return [cast(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SelfprefError(f"{flag} {text!r}: give {cast.__name__} values separated by commas, "
                            f"e.g. {example}") from None


def command_line() -> str:
    """The command as typed, with any credentials in URLs masked (keys only ever come from env)."""
    words = ["selfpref", *sys.argv[1:]]
    return re.sub(r"://[^/@\s]+@", "://***@", " ".join(shlex.quote(w) for w in words))
