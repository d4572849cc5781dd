"""`selfpref cache info|clear`: the request and step caches that keep a rerun from paying twice."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selfpref.cli.app import app, console

cache_app = typer.Typer(help="The request and step caches builds read before sending a request "
                        "or running a step (docs/howto/cache.md).", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

FOLDER_HELP = ("A cache folder, or the folder a build wrote its output in (its .selfpref-cache); "
               "default: $SELFPREF_CACHE_DIR, else ./.selfpref-cache.")


def _folder(path: Optional[Path]) -> Path:
    from selfpref.pipelines.step_cache import CACHE_FOLDER, default_cache_dir

    if path is None:
        return default_cache_dir(Path("."))
    return path / CACHE_FOLDER if (path / CACHE_FOLDER).is_dir() else path


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@cache_app.command("info")
def info(path: Optional[Path] = typer.Argument(None, help=FOLDER_HELP)) -> None:
    """Where the cache is, how large, and how many entries each file holds."""
    from selfpref.pipelines.step_cache import cache_info

    found = cache_info(_folder(path))
    console.print(f"cache {found['location']}: {found['entries']} entries, {_size(found['bytes'])}",
                  markup=False, highlight=False)
    if not found["files"]:
        console.print("  empty (a build writes it as responses arrive and steps finish)", markup=False)
    for name, f in found["files"].items():
        torn = f", {f['unreadable_lines']} unreadable line(s) skipped" if f["unreadable_lines"] else ""
        console.print(f"  {name}: {f['entries']} entries, {_size(f['bytes'])}{torn}", markup=False,
                      highlight=False)


@cache_app.command("clear")
def clear(path: Optional[Path] = typer.Argument(None, help=FOLDER_HELP)) -> None:
    """Empty the cache: the next build sends every request and runs every step again."""
    from selfpref.pipelines.step_cache import clear_cache

    found = clear_cache(_folder(path))
    console.print(f"cleared {found['location']}: {found['entries']} entries, {_size(found['bytes'])} "
                  "removed", markup=False, highlight=False)
