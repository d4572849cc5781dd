"""The `selfpref` command line (typer + rich). Commands parse flags and call into the layers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from selfpref import SelfprefError, __version__

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


@app.command()
def version() -> None:
    """Print the selfpref version."""
    print(__version__)


@app.command()
def ask(
    question: str = typer.Argument(..., help="The user turn to answer."),
    model: Optional[str] = typer.Option(None, help="Model folder or Hub id; default: embedded SmolLM2-135M-Instruct."),
    max_new_tokens: int = typer.Option(64, help="Most new tokens to generate."),
    temperature: float = typer.Option(0.0, help="0 for greedy decoding."),
) -> None:
    """Answer one question with a model (the embedded default when --model is not given)."""
    from selfpref.generation import generate_batch
    from selfpref.models import load_causal_lm

    lm, tok = load_causal_lm(model)
    [[answer]] = generate_batch(lm, tok, [[{"role": "user", "content": question}]],
                                max_new_tokens=max_new_tokens, temperature=temperature)
    console.print(answer, markup=False)


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
    from selfpref.importer import import_rows, read_source
    from selfpref.store import BuildRecord, parse_version, write_dataset

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
    from selfpref.stats import summarize
    from selfpref.store import read_dataset

    df, record = read_dataset(ref)
    summary = summarize(df)
    if as_json:
        print(json.dumps({"name": record.name, "version": record.version, **summary}, indent=2))
        return
    _print_summary(f"{record.name} {record.version} ({record.method})", summary)


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


def main() -> None:
    """Entry point: user errors become one red line and exit code 2, never a traceback."""
    try:
        app()
    except SelfprefError as exc:
        err_console.print(f"error: {exc}", style="red", markup=False, highlight=False,
                          soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
