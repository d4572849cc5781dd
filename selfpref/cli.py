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


def number_list(text: str | None, flag: str, cast: type, example: str) -> list | None:
    """``"0.5,0.25"`` -> ``[0.5, 0.25]`` for a comma-separated flag; None when not given."""
    if not text:
        return None
    try:
        return [cast(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SelfprefError(f"{flag} {text!r}: give {cast.__name__} values separated by commas, "
                            f"e.g. {example}") from None


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
    from selfpref.store import read_folder, split_ref

    if Path(ref).expanduser().exists():
        df, record = read_folder(Path(ref).expanduser())
    else:  # a Hub ref: polars reads the parquet through HfFileSystem file objects
        from selfpref.hub import read_remote

        repo, revision = split_ref(ref)
        if repo.count("/") != 1:
            raise SelfprefError(f"{ref}: no such folder, and not a Hub id (org/name[@version])")
        df, record = read_remote(repo, revision)
    summary = summarize(df)
    if as_json:
        print(json.dumps({"name": record.name, "version": record.version, **summary}, indent=2))
        return
    _print_summary(f"{record.name} {record.version} ({record.method})", summary)


@app.command()
def train(
    method: str = typer.Argument(..., help="dpo, ipo, simpo, sso, selfee or rm."),
    dataset: Optional[str] = typer.Option(None, help="Dataset folder, Hub id or id@version (or set `dataset:` in --config)."),
    model: Optional[str] = typer.Option(None, help="Model folder or Hub id; default: the embedded SmolLM2-135M-Instruct."),
    output_dir: Path = typer.Option(..., "--output-dir", "-o", help="Where the trained model and its card go."),
    config: Optional[Path] = typer.Option(None, "--config", help="Recipe YAML (fields of the method's config; unknown keys are errors)."),
    reference_model: Optional[str] = typer.Option(None, help="Reference model for dpo/ipo/sso/selfee; default: a copy of --model."),
    learning_rate: Optional[float] = typer.Option(None, help="Learning rate."),
    epochs: Optional[float] = typer.Option(None, help="Number of training epochs."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, help="Per-device train batch size."),
    grad_accum: Optional[int] = typer.Option(None, help="Gradient accumulation steps."),
    beta: Optional[float] = typer.Option(None, help="beta of the loss (defaults: dpo/ipo 0.1, simpo 10, sso 0.2, selfee 0.1)."),
    max_length: Optional[int] = typer.Option(None, help="Longest prompt+answer in tokens."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    selfee_lambda: Optional[float] = typer.Option(None, help="selfee: lambda of the extrapolated policy (Eq. 12)."),
    push_to_hub: Optional[str] = typer.Option(None, help="Push the model to this Hub repo (org/name)."),
) -> None:
    """Train a model on a preference dataset with DPO, IPO, SimPO, SSO, SELFEE or a reward model."""
    from selfpref.trainers.configs import recipe_run_keys
    from selfpref.trainers.run import train as run_train

    keys = recipe_run_keys(config) if config else {}
    dataset = dataset or keys.get("dataset")
    if not dataset:
        raise SelfprefError("no dataset: pass --dataset REF or set `dataset:` in the recipe")
    summary = run_train(method, dataset, output_dir, model=model or keys.get("model"),
                        reference_model=reference_model, recipe=config, push_to_hub=push_to_hub,
                        learning_rate=learning_rate, num_train_epochs=epochs, max_steps=max_steps,
                        per_device_train_batch_size=batch_size, gradient_accumulation_steps=grad_accum,
                        beta=beta, max_length=max_length, seed=seed, selfee_lambda=selfee_lambda)
    console.print(f"trained {method} for {summary['steps']} steps in {summary['seconds']} s; "
                  f"final loss {summary['train_loss']:.4f}; model in {output_dir}")


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


# Commands that live in their own modules register themselves on `app` when imported.
from selfpref import cli_build, cli_filter, cli_hub, cli_iterate, cli_steer  # noqa: E402,F401

if __name__ == "__main__":
    # Run through the imported module so commands registered on selfpref.cli.app are present.
    from selfpref.cli import main as _main

    _main()
