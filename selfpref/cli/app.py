"""The typer app and what the command modules share: consoles, list flags, card and push helpers.

Command modules import this module; it imports none of them (they register on ``app`` when
``selfpref.cli`` loads them), so the CLI has no import cycle.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from collections.abc import Iterable
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


def check_models(refs: Iterable[tuple[str, str | None]]) -> None:
    """Refuse, before any work starts, a model reference that cannot be used ((flag, reference)).

    A path that does not exist (or has no config.json) is one line naming the flag; a Hub id must
    be in the cache or, online, exist on the Hub. Nothing is downloaded or converted here.
    """
    from selfpref.data.hub import check_model_available
    from selfpref.models.resolve import is_default, resolve_model

    for flag, ref in refs:
        if ref is None or is_default(ref):
            continue
        resolved = resolve_model(ref, flag=flag)
        if not Path(resolved).exists():
            check_model_available(resolved, flag)


def check_push_target(repo: str | None, flag: str = "--push-to-hub") -> None:
    """Before a long build: the repo id's form, offline mode and the token (nothing is sent)."""
    if repo:
        from selfpref.data.hub import check_push_ready

        check_push_ready(repo, flag)


def check_output(folder: Path, overwrite: bool, flag: str = "--output") -> None:
    """An existing dataset, or a file or folder of the user's, at ``folder`` needs --overwrite.

    With --overwrite, something there that is not a dataset folder is removed now (a dataset
    folder is replaced only once the new one is complete).
    """
    import shutil

    from selfpref.data.store import check_output as check
    from selfpref.data.store import is_dataset_folder

    path = check(folder, overwrite=overwrite, flag=flag)
    if overwrite and (path.exists() or path.is_symlink()) and not is_dataset_folder(path):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


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


def card_hook(license: str | None, separability: bool = True) -> Any:
    """The data-card writer that dataset writes call before the folder is renamed into place."""
    from selfpref.datacards import card_writer

    return card_writer(license=license, separability=separability)


def push_and_report(folder: Path, repo: str, version: str, private: bool = False) -> None:
    """Push a dataset folder as ``repo@v<version>`` and say where it went."""
    from selfpref.data.hub import push_folder

    url = push_folder(folder, repo, version=version, private=private)
    console.print(f"pushed {folder} as {repo}@v{version}: {url}")
