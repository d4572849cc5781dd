"""Dataset commands: `import`, `inspect`, `card` and `push` (the data card and the Hub)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from selfpref.api.data import card as api_card
from selfpref.api.data import import_data as api_import_data
from selfpref.api.data import push as api_push
from selfpref.api.help import arg_help
from selfpref.cli.app import app, console, out


class Layout(str, Enum):
    auto = "auto"
    trl = "trl"
    hh = "hh"
    sharegpt = "sharegpt"
    openai = "openai"
    ultrafeedback_raw = "ultrafeedback_raw"
    distilabel = "distilabel"


@app.command("import")
def import_(
    ref: str = typer.Argument(..., help=arg_help(api_import_data, "ref")),
    output: Path = typer.Option(..., "--output", "-o", help=arg_help(api_import_data, "output")),
    split: Optional[str] = typer.Option(None, help=arg_help(api_import_data, "split")),
    layout: Layout = typer.Option(Layout.auto, help=arg_help(api_import_data, "layout")),
    seed: int = typer.Option(0, help=arg_help(api_import_data, "seed")),
    name: Optional[str] = typer.Option(None, help=arg_help(api_import_data, "name")),
    generator: str = typer.Option("unknown", help=arg_help(api_import_data, "generator")),
    labeler: str = typer.Option("human", help=arg_help(api_import_data, "labeler")),
    dataset_version: str = typer.Option("0.1.0", "--version", help=arg_help(api_import_data, "version")),
    overwrite: bool = typer.Option(False, "--overwrite", help=arg_help(api_import_data, "overwrite")),
) -> None:
    """Map preference data selfpref did not make onto the contract (TRL, UltraFeedback, HH, ShareGPT, OpenAI, distilabel)."""
    from selfpref.api import import_data

    import_data(ref, output, split=split, layout=layout.value, seed=seed, name=name,
                generator=generator, labeler=labeler, version=dataset_version, overwrite=overwrite,
                notify=lambda line: console.print(line, markup=False, highlight=False))


def refuse_empty(ref: str, rows: int, record, what: str) -> None:
    """The library's check (``selfpref.api.data.refuse_empty``)."""
    from selfpref.api.data import refuse_empty as refuse

    refuse(ref, rows, record, what)


@app.command()
def inspect(
    ref: str = typer.Argument(..., help="Dataset folder, Hub id or id@version."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarise a dataset: rows, nulls, lengths, chosen-longer share, confidence, methods, labelers."""
    from selfpref.data.funnel import funnel_text
    from selfpref.data.refs import read_dataset
    from selfpref.data.stats import summarize

    df, record = read_dataset(ref)
    summary = summarize(df)
    if as_json:
        out(json.dumps({"name": record.name, "version": record.version, **summary,
                        **({"usage": record.stats["usage"]} if "usage" in record.stats else {})},
                       indent=2, allow_nan=False))
        return
    if df.height == 0:
        console.print(f"{record.name} {record.version} ({record.method}): 0 rows, nothing to "
                      f"summarise ({funnel_text(record.funnel)})", markup=False, highlight=False)
        return
    _print_summary(f"{record.name} {record.version} ({record.method})", summary)
    if record.stats.get("usage"):
        from selfpref.pipelines.accounting import summary_lines

        for line in summary_lines(record.stats["usage"]):
            console.print(line, markup=False, highlight=False)


@app.command()
def card(
    ref: str = typer.Argument(..., help=arg_help(api_card, "ref")),
    license: Optional[str] = typer.Option(None, help=arg_help(api_card, "license")),
    no_separability: bool = typer.Option(False, "--no-separability", help="Skip the separability probe (the card says so)."),
) -> None:
    """Regenerate a dataset folder's data card (README.md, plots, separability)."""
    from selfpref.api import card as write_card

    path = write_card(ref, license=license, separability=not no_separability)
    console.print(f"wrote {path}", markup=False, highlight=False)


@app.command()
def push(
    folder: Path = typer.Argument(..., help=arg_help(api_push, "folder")),
    repo: str = typer.Argument(..., help=arg_help(api_push, "repo")),
    private: bool = typer.Option(False, help=arg_help(api_push, "private")),
    dataset_version: Optional[str] = typer.Option(None, "--version", help=arg_help(api_push, "version")),
) -> None:
    """Upload a dataset folder in one commit and tag it with its version (token: HF_TOKEN or login)."""
    from selfpref.api import push as push_dataset
    from selfpref.data.store import read_record

    url = push_dataset(folder, repo, private=private, version=dataset_version)
    version = dataset_version or read_record(Path(folder)).version
    console.print(f"pushed {folder} as {repo}@v{version}: {url}")


def _print_summary(title: str, s: dict) -> None:
    console.print(f"[bold]{title}[/bold]: {s['rows']} rows")
    lengths = Table("characters", "min", "p50", "p90", "max", title="lengths")
    for col, q in s["lengths"].items():
        lengths.add_row(col, *(str(q[k]) for k in ("min", "p50", "p90", "max")))
    console.print(lengths)
    console.print(f"chosen longer than rejected: {s['chosen_longer_share']:.1%}")
    if s["confidence"]:
        c = s["confidence"]
        console.print("confidence: " + ", ".join(f"{k} {c[k]:.3f}" for k in ("min", "p50", "p90", "max", "mean")))
    if s["judge_consistency"] is not None:
        console.print(f"judge consistency: {s['judge_consistency']:.1%}")
    console.print(f"prompt duplicate rate: {s['prompt_duplicate_rate']:.1%}")
    for key in ("by_method", "by_labeler"):
        console.print(f"{key.replace('by_', '')}: " + ", ".join(f"{k} {v}" for k, v in s[key].items()))
    nulls = {k: v for k, v in s["null_counts"].items() if v}
    console.print("nulls: " + (", ".join(f"{k} {v}" for k, v in nulls.items()) or "none"))
