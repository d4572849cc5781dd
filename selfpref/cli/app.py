"""The typer app and what the command modules share: consoles, list flags, card and push helpers.

Command modules import this module; it imports none of them (they register on ``app`` when
``selfpref.cli`` loads them), so the CLI has no import cycle.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from selfpref import SelfprefError

app = typer.Typer(
    name="selfpref",
    help="A language model as its own preference-data factory: build, filter, card, push, "
    "inspect and train on synthetic preference datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


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


def card_hook(license: str | None) -> Any:
    """The data-card writer that dataset writes call before the folder is renamed into place."""
    from selfpref.datacards import card_writer

    return card_writer(license=license)


def push_and_report(folder: Path, repo: str, version: str, private: bool = False) -> None:
    """Push a dataset folder as ``repo@v<version>`` and say where it went."""
    from selfpref.data.hub import push_folder

    url = push_folder(folder, repo, version=version, private=private)
    console.print(f"pushed {folder} as {repo}@v{version}: {url}")
