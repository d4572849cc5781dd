"""Dataset commands: `import`, `inspect`, `card` and `push` (the data card and the Hub)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from selfpref import SelfprefError
from selfpref.cli.app import (OVERWRITE_HELP, app, check_output, check_push_target, console, out,
                              push_and_report)
from selfpref.data.funnel import funnel_text


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
    ref: str = typer.Argument(..., help="A file (parquet/jsonl/json/csv), a folder of them, or a Hub dataset id."),
    output: Path = typer.Option(..., "--output", "-o", help="Dataset folder to write."),
    split: Optional[str] = typer.Option(None, help="Split to read: a Hub dataset's split, or the files of a folder whose names contain it."),
    layout: Layout = typer.Option(Layout.auto, help="Source layout; auto detects it from the columns (TRL, UltraFeedback binarized or raw, Anthropic HH, ShareGPT, OpenAI messages, distilabel)."),
    seed: int = typer.Option(0, help="Seed for the rejected answer drawn from rated answers (ultrafeedback_raw, distilabel); recorded in selfpref.json."),
    name: Optional[str] = typer.Option(None, help="Dataset name; default: the output folder's name."),
    generator: str = typer.Option("unknown", help="Model id that wrote the answers, for the 'generator' column."),
    labeler: str = typer.Option("human", help="How the labels were made, for the 'labeler' column."),
    dataset_version: str = typer.Option("0.1.0", "--version", help="Version of the new dataset."),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Map preference data selfpref did not make onto the contract (TRL, UltraFeedback, HH, ShareGPT, OpenAI, distilabel)."""
    from selfpref.data.importer import BINARIZED_LAYOUTS, detect_layout, import_rows, read_source
    from selfpref.data.store import BuildRecord, parse_version, write_dataset

    parse_version(dataset_version)
    check_output(output, overwrite)
    source = read_source(ref, split)
    chosen_layout = detect_layout(source) if layout is Layout.auto else layout.value
    rows, dropped = import_rows(source, generator=generator, labeler=labeler, layout=chosen_layout,
                                seed=seed)
    binarized = chosen_layout in BINARIZED_LAYOUTS
    parameters = {"source": ref, "split": split, "layout": chosen_layout,
                  **({"seed": seed} if binarized else {})}
    funnel = [{"step": "import", "parameters": parameters, "input": source.height,
               "kept": rows.height, "dropped": dropped}]
    record = BuildRecord(name=name or output.name, method="import", version=dataset_version,
                         models={"generator": generator}, parameters=parameters,
                         seed=seed if binarized else None, funnel=funnel,
                         parent={"id": ref, "version": split or "", "fingerprint": ""})
    write_dataset(rows, output, record, overwrite=overwrite)
    console.print(f"imported {rows.height} of {source.height} rows ({chosen_layout} layout) into {output}",
                  markup=False, highlight=False)
    for reason, count in sorted(dropped.items()):
        console.print(f"  dropped {count}: {reason}", markup=False, highlight=False)


def refuse_empty(ref: str, rows: int, record, what: str) -> None:
    """One line for a command that needs rows, on a dataset that has none."""
    if rows == 0:
        raise SelfprefError(f"{ref} has 0 rows ({funnel_text(record.funnel)}): nothing to "
                            f"{what}; rebuild it with more prompts or looser filters")


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
        out(json.dumps({"name": record.name, "version": record.version, **summary}, indent=2,
                       allow_nan=False))
        return
    if df.height == 0:
        console.print(f"{record.name} {record.version} ({record.method}): 0 rows, nothing to "
                      f"summarise ({funnel_text(record.funnel)})", markup=False, highlight=False)
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

    import polars as pl

    from selfpref.datacards import CACHE_FILE, card_writer
    from selfpref.data.atomic import replace_file
    from selfpref.data.store import DATA_FILE, read_folder
    from selfpref.data.refs import parse_ref

    parsed = parse_ref(ref)
    if parsed.path is None or not parsed.path.is_dir():
        raise SelfprefError(f"{ref}: `selfpref card` rewrites a local folder; download a Hub "
                            "dataset first or pass its folder")
    folder = parsed.path
    df, record = read_folder(folder)
    refuse_empty(ref, df.height, record, "write a card about")

    # Write into a copy and swap the changed files in, so a crash never leaves half a card.
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        work = Path(tmp) / folder.name
        shutil.copytree(folder, work)
        card_writer(license, separability=not no_separability)(pl.scan_parquet(work / DATA_FILE), record, work)
        cache = [CACHE_FILE] if (work / CACHE_FILE).is_file() else []
        for rel in ["README.md", "selfpref.json", *cache, *[f"plots/{p.name}" for p in (work / "plots").glob("*.png")]]:
            if not (folder / rel).parent.exists():
                (folder / rel).parent.mkdir()
            replace_file(work / rel, folder / rel)
    console.print(f"wrote {folder}/README.md", markup=False, highlight=False)


@app.command()
def push(
    folder: Path = typer.Argument(..., help="Dataset folder to upload."),
    repo: str = typer.Argument(..., help="Hub dataset repo, org/name."),
    private: bool = typer.Option(False, help="Create the repo private (an existing public repo is refused: a push never changes visibility)."),
    dataset_version: Optional[str] = typer.Option(None, "--version", help="Tag to create (default: the folder's version)."),
) -> None:
    """Upload a dataset folder in one commit and tag it with its version (token: HF_TOKEN or login)."""
    from selfpref.data.store import parse_version, read_folder

    check_push_target(repo, "push")
    _, record = read_folder(folder)
    version = dataset_version or record.version
    parse_version(version)
    push_and_report(folder, repo, version, private)


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
