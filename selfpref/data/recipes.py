"""The one YAML reader for everything a user hands selfpref as a file: recipes, scripts, tables.

A missing file, a parse error (with its line), a file that is not a mapping and an unknown key
are each one line naming the file and the fix, for ``--config``, ``--filters``, ``--principles``,
``--script`` and the rest alike: a recipe that drifts fails loudly, never runs half-read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from selfpref import SelfprefError


def load_yaml_mapping(path: str | os.PathLike, *, what: str = "recipe",
                      allowed: Iterable[str] | None = None, flag: str | None = None) -> dict[str, Any]:
    """The mapping in a YAML file; ``allowed`` (when given) is the complete set of valid keys."""
    import yaml

    where = f"{flag} {path}" if flag else str(path)
    file = Path(path).expanduser()
    if not file.is_file():
        raise SelfprefError(f"{where}: no such {what} file" + (" (it is a folder)" if file.is_dir() else ""))
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SelfprefError(f"{where}: not valid YAML{line} ({problem}); fix the {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SelfprefError(f"{where}: cannot read the {what} ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SelfprefError(f"{where}: a {what} is a YAML mapping of keys to values, this file "
                            f"holds a {type(data).__name__}")
    if allowed is not None:
        valid = set(allowed)
        unknown = sorted(str(k) for k in data if k not in valid)
        if unknown:
            raise SelfprefError(f"{where}: unknown key '{unknown[0]}' in the {what} (valid keys: "
                                f"{', '.join(sorted(valid))}); fix or remove it")
    return data


def shipped_recipes_dir() -> Path:
    """The recipes shipped inside the package (``selfpref/recipes/<kind>/<name>.yaml``)."""
    return Path(__file__).resolve().parents[1] / "recipes"


def shipped_recipes(kind: str) -> list[str]:
    """Names of the shipped recipes of one kind (``build``, ``filter``, or a training method)."""
    return sorted(p.stem for p in (shipped_recipes_dir() / kind).glob("*.yaml"))


def find_recipe(ref: str | os.PathLike, kind: str, flag: str = "--config") -> Path:
    """A recipe given as a file path, or by the name of a shipped one (``sao-paper``).

    A name that is neither an existing file nor a shipped recipe is one line listing the names.
    """
    path = Path(ref).expanduser()
    if path.exists() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path  # a file of the user's (a missing one is reported by load_yaml_mapping)
    shipped = shipped_recipes_dir() / kind / f"{path.name}.yaml"
    if shipped.is_file():
        return shipped
    names = shipped_recipes(kind)
    raise SelfprefError(f"{flag} {ref}: no such file, and no shipped {kind} recipe of that name"
                        + (f" (shipped: {', '.join(names)})" if names else "")
                        + "; give a YAML file's path")
