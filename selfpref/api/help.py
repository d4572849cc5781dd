"""One text per option: the CLI's ``--help`` reads the help the API documents.

A config dataclass field's ``metadata["help"]`` (``BuildConfig``, ``EvalConfig``, ...) or an API
function's ``Args:`` entry (Google style, the text mkdocstrings renders) is the option's help; the
typer commands take theirs from here, so the CLI and the API docs cannot say different things.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from functools import cache
from typing import Any

_ARG = re.compile(r"^(\s+)(\*{0,2}\w+)(?: \([^)]*\))?:\s?(.*)$")


@cache
def _docstring_args(func: Callable[..., Any]) -> dict[str, str]:
    doc = inspect.getdoc(func) or ""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Args:") + 1
    except StopIteration:
        return {}
    args: dict[str, str] = {}
    current, indent = None, None
    for line in lines[start:]:
        if line.strip() and not line.startswith(" "):
            break  # the next section (Returns:, Raises:)
        match = _ARG.match(line)
        if match and (indent is None or len(match.group(1)) == indent):
            indent, current = len(match.group(1)), match.group(2).lstrip("*")
            args[current] = match.group(3).strip()
        elif current and line.strip():
            args[current] += " " + line.strip()
    return args


def arg_help(func: Callable[..., Any], name: str) -> str:
    """The ``Args:`` text of ``name`` in ``func``'s docstring (a KeyError names what is missing)."""
    args = _docstring_args(func)
    if name not in args:
        raise KeyError(f"{func.__qualname__} documents no argument {name!r} (Args: {sorted(args)})")
    text = plain(args[name])
    return text[0].upper() + text[1:] if text else text


def plain(text: str) -> str:
    """Docstring markup as a terminal shows it: ``x`` -> x, :class:`~a.b.C` -> C."""
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?(\w+)`", r"\1", text)
    return text.replace("``", "")


def field_help(cls: type, name: str) -> str:
    """The ``help`` metadata of a config dataclass's field, with its default when the text does
    not give it (a CLI flag whose own default is unset shows the config's this way)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            text = str(f.metadata["help"])
            default = f.default
            if default is not dataclasses.MISSING and default not in (None, False, "") \
                    and "default" not in text.lower():
                text = f"{text.rstrip()} Default: {default}."
            return text
    raise KeyError(f"{cls.__name__} has no field {name!r}")
