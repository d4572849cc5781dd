"""mkdocs hook: generated reference, so it can never drift from the code. A page holding
``<!-- cli-reference -->`` gets the CLI reference (from the typer app), ``<!-- recipes-reference -->``
the shipped recipes, ``<!-- config-fields: module.Class -->`` a config dataclass's fields and help."""

from __future__ import annotations

import re
from typing import Any

MARKER = "<!-- cli-reference -->"


def _escape(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _command_markdown(path: str, command: Any, ctx: Any) -> list[str]:
    import typer

    lines = [f"## `{path}`", ""]
    help_text = (command.help or "").strip()
    if help_text:
        lines += [help_text.split("\n\n")[0].replace("\n", " "), ""]
    params = [p for p in command.params if getattr(p, "name", None) not in ("help",)]
    arguments = [p for p in params if p.param_type_name == "argument"]
    options = [p for p in params if p.param_type_name == "option"]
    usage = " ".join([path] + [f"{p.name.upper()}" for p in arguments] + (["[OPTIONS]"] if options else []))
    lines += ["```text", usage, "```", ""]
    rows = []
    for p in arguments + options:
        names = ", ".join(f"`{n}`" for n in (list(p.opts) + list(getattr(p, "secondary_opts", []))))
        if p.param_type_name == "argument":
            names = f"`{p.name.upper()}`"
        default = getattr(p, "default", None)
        shown = "" if default in (None, False, ()) or callable(default) else f"`{default}`"
        if getattr(p, "required", False):
            shown = "required"
        rows.append(f"| {names} | {_escape(getattr(p, 'help', '') or '')} | {shown} |")
    if rows:
        lines += ["| option | what it does | default |", "|---|---|---|", *rows, ""]
    sub = getattr(command, "commands", None)
    if sub:
        for name in sorted(sub):
            lines += _command_markdown(f"{path} {name}", sub[name], ctx)
    del typer
    return lines


def cli_reference() -> str:
    import typer

    from selfpref.cli import app

    root = typer.main.get_command(app)
    lines: list[str] = []
    for name in sorted(root.commands):
        lines += _command_markdown(f"selfpref {name}", root.commands[name], None)
    return "\n".join(lines)


RECIPES_MARKER = "<!-- recipes-reference -->"


def recipes_reference() -> str:
    """One table per kind: the name to pass to --config, the file, and its first comment."""
    from selfpref.data.recipes import shipped_recipes_dir

    root = shipped_recipes_dir()
    use = {"build": "selfpref build METHOD --config {name}", "filter": "selfpref filter DS --config {name}",
           "accelerate": "accelerate launch --config_file {path} ..."}
    lines: list[str] = []
    for kind in sorted(p.name for p in root.iterdir() if p.is_dir()):
        lines += [f"## {kind}", "", "| use | what it is |", "|---|---|"]
        for file in sorted((root / kind).glob("*.yaml")):
            comment = next((ln.lstrip("# ").strip() for ln in file.read_text().splitlines()
                            if ln.startswith("#")), "")
            how = use.get(kind, f"selfpref train {kind} --config {{name}}")
            lines.append(f"| `{how.format(name=file.stem, path=file.relative_to(root.parent.parent))}` "
                         f"| {_escape(comment)} |")
        lines.append("")
    return "\n".join(lines)


CONFIG_MARKER = re.compile(r"<!-- config-fields: ([\w.]+) -->")


def config_fields(path: str) -> str:
    """A config dataclass's fields as a table: name, default, and the help its CLI flag shows."""
    import dataclasses
    import importlib

    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    rows = ["| field | default | help |", "|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f"`{f.default!r}`"
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f"`{f.default_factory()!r}`"  # type: ignore[misc]
        else:
            default = "required"
        rows.append(f"| `{f.name}` | {default} | {_escape(f.metadata.get('help', ''))} |")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Each marker replaced by what it names, generated now."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, cli_reference())
    if RECIPES_MARKER in markdown:
        markdown = markdown.replace(RECIPES_MARKER, recipes_reference())
    return CONFIG_MARKER.sub(lambda m: config_fields(m.group(1)), markdown)
