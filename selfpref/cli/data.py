"""Dataset commands: `import`, `inspect`, `card` and `push` (the data card and the Hub)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from selfpref import SelfprefError
from selfpref.cli.app import app, console, push_and_report


@app.command("import")
def import_(
    ref: str = typer.Argument(..., help="A file (parquet/jsonl/json/csv), a folder of them, or a Hub dataset id."),
    output: Path = typer.Option(..., "--output", "-o", help="Dataset folder to write."),
    split: Optional[str] = typer.Option(None, help="Split to read (Hub ids; files whose name contains it in folders)."),
    name: Optional[str] = typer.Option(None, help="Dataset name; default: the output folder's name."),
    generator: str = typer.Option("unknown", help="Model id that wrote the answers, for the 'generator' column."),
    labeler: str = typer.Option("human", help="How the labels were made, for the 'labeler' column."),
    dataset_version: str = typer.Option("0.1.0", "--version", help="Version of the new dataset."),
) -> None:
    """Map preference data selfpref did not make (TRL or UltraFeedback-binarized layout) onto the contract."""
    from selfpref.data.importer import import_rows, read_source
    from selfpref.data.store import BuildRecord, parse_version, write_dataset

    parse_version(dataset_version)
    source = read_source(ref, split)
    rows, dropped = import_rows(source, generator=generator, labeler=labeler)
    funnel = [{"step": "import", "parameters": {"source": ref, "split": split},
               "input": source.height, "kept": rows.height, "dropped": dropped}]
    record = BuildRecord(name=name or output.name, method="import", version=dataset_version,
                         models={"generator": generator}, parameters={"source": ref, "split": split},
                         funnel=funnel, parent={"id": ref, "version": split or "", "fingerprint": ""})
    write_dataset(rows, output, record)
    console.print(f"imported {rows.height} of {source.height} rows into {output}")
    for reason, count in sorted(dropped.items()):
        console.print(f"  dropped {count}: {reason}")


@app.command()
def inspect(
    ref: str = typer.Argument(..., help="Dataset folder, Hub id or id@version."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarise a dataset: rows, nulls, lengths, chosen-longer share, confidence, methods, labelers."""
    from selfpref.data.refs import read_dataset
    from selfpref.data.stats import summarize

    df, record = read_dataset(ref)
    summary = summarize(df)
    if as_json:
        print(json.dumps({"name": record.name, "version": record.version, **summary}, indent=2))
        return
    _print_summary(f"{record.name} {record.version} ({record.method})", summary)


@app.command()
def card(
    ref: str = typer.Argument(..., help="Dataset folder (its README.md and plots are rewritten)."),
    license: Optional[str] = typer.Option(None, help="License for the YAML header (unset: 'other')."),
    no_separability: bool = typer.Option(False, "--no-separability", help="Skip the separability probe (the card says so)."),
) -> None:
    """Regenerate a dataset folder's data card (README.md, plots, separability)."""
    import shutil
    import tempfile

    from selfpref.datacards import CACHE_FILE, card_writer
    from selfpref.data.store import DATA_FILE, read_record

    folder = Path(ref)
    if not folder.is_dir():
        raise SelfprefError(f"{ref}: `selfpref card` rewrites a local folder; download a Hub "
                            "dataset first or pass its folder")
    record = read_record(folder)
    import polars as pl

    # Write into a copy and swap the changed files in, so a crash never leaves half a card.
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        work = Path(tmp) / folder.name
        shutil.copytree(folder, work)
        card_writer(license, separability=not no_separability)(pl.scan_parquet(work / DATA_FILE), record, work)
        cache = [CACHE_FILE] if (work / CACHE_FILE).is_file() else []
        for rel in ["README.md", "selfpref.json", *cache, *[f"plots/{p.name}" for p in (work / "plots").glob("*.png")]]:
            (folder / rel).parent.mkdir(exist_ok=True)
            (work / rel).replace(folder / rel)
    console.print(f"wrote {folder}/README.md")


@app.command()
def push(
    folder: Path = typer.Argument(..., help="Dataset folder to upload."),
    repo: str = typer.Argument(..., help="Hub dataset repo, org/name."),
    private: bool = typer.Option(False, help="Create the repo private."),
    dataset_version: Optional[str] = typer.Option(None, "--version", help="Tag to create (default: the folder's version)."),
) -> None:
    """Upload a dataset folder in one commit and tag it with its version (token: HF_TOKEN or login)."""
    from selfpref.data.store import read_record

    record = read_record(folder)
    push_and_report(folder, repo, dataset_version or record.version, private)


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
