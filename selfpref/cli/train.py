"""`selfpref train METHOD`: a dataset reference -> a TRL trainer -> a model folder with its card."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import click
import typer
from typer.core import TyperCommand

from selfpref import SelfprefError
from selfpref.cli.app import app, bounded, check_models, check_output, console


class Method(str, Enum):  # selfpref.trainers.configs.METHODS (a test keeps them equal)
    dpo = "dpo"
    ipo = "ipo"
    simpo = "simpo"
    orpo = "orpo"
    sso = "sso"
    selfee = "selfee"
    rm = "rm"


class TrainCommand(TyperCommand):
    """`train METHOD --help` ends with METHOD's defaults and their sources.

    --help is eager: click prints help before METHOD is converted, so the method is read from the
    parsed command line here; `train --help` without a method points to the per-method form.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            opts, _, _ = self.make_parser(ctx).parse_args(args=list(args))
            ctx.meta["selfpref_train_method"] = opts.get("method")
        except click.UsageError:
            pass  # the real parse below reports it
        return super().parse_args(ctx, args)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from selfpref.trainers.defaults import DEFAULTS, defaults_table

        super().format_help(ctx, formatter)  # rich help prints now; the formatter's text follows it
        method = ctx.meta.get("selfpref_train_method")
        formatter.write("\n")
        if method in DEFAULTS:
            formatter.write(defaults_table(method) + "\n")
        else:
            formatter.write("`selfpref train METHOD --help` lists METHOD's default settings "
                            "(learning rate, schedule, warm-up, epochs, batch, beta) with their sources.\n")


def check_dataset(ref: str, method: str, flag: str = "--dataset") -> None:
    """Before any model loads: the dataset exists (or is on the Hub) and has rows."""
    import pyarrow.parquet as pq

    from selfpref.cli.data import refuse_empty
    from selfpref.data.refs import parse_ref, resolve_folder
    from selfpref.data.store import NotSelfprefDataset, is_dataset_folder, read_record

    parsed = parse_ref(ref, flag=flag)
    if parsed.path is not None and not is_dataset_folder(parsed.path):
        return  # a file or folder selfpref did not make: the trainer maps it (and says why not)
    try:
        folder = resolve_folder(ref, flag=flag)
    except NotSelfprefDataset:
        return
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in sorted((folder / "data").glob("*.parquet")))
    refuse_empty(ref, rows, read_record(folder), f"train {method} on")


@app.command(cls=TrainCommand)
def train(
    method: Method = typer.Argument(..., help="dpo, ipo, simpo, orpo, sso, selfee or rm."),
    dataset: Optional[str] = typer.Option(None, help="Dataset folder, Hub id or id@version (or set `dataset:` in --config)."),
    model: Optional[str] = typer.Option(None, help="Model folder or Hub id; default: the embedded SmolLM2-135M-Instruct."),
    output_dir: Path = typer.Option(..., "--output-dir", "-o", help="Where the trained model and its card go."),
    config: Optional[Path] = typer.Option(None, "--config", help="Recipe YAML (fields of the method's config; unknown keys are errors)."),
    reference_model: Optional[str] = typer.Option(None, help="Reference model for dpo/ipo/sso/selfee; default: a copy of --model."),
    learning_rate: Optional[float] = typer.Option(None, callback=bounded(0, low_open=True), help="Learning rate."),
    epochs: Optional[float] = typer.Option(None, callback=bounded(0, low_open=True), help="Number of training epochs."),
    max_steps: Optional[int] = typer.Option(None, callback=bounded(1), help="Stop after this many optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, callback=bounded(1), help="Per-device train batch size."),
    grad_accum: Optional[int] = typer.Option(None, callback=bounded(1), help="Gradient accumulation steps."),
    beta: Optional[float] = typer.Option(None, callback=bounded(0, low_open=True), help="beta of the loss (defaults: dpo 0.1, ipo 0.2, simpo 10, orpo 0.1 (lambda), sso 0.2, selfee 0.1)."),
    max_length: Optional[int] = typer.Option(None, callback=bounded(8), help="Longest prompt+answer in tokens."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    selfee_lambda: Optional[float] = typer.Option(None, callback=bounded(0), help="selfee: lambda of the extrapolated policy (Eq. 12)."),
    push_to_hub: Optional[str] = typer.Option(None, help="Push the model to this Hub repo (org/name)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace what is at --output-dir (a trained model, or any folder: its contents are deleted)."),
) -> None:
    """Train a model on a preference dataset with DPO, IPO, SimPO, ORPO, SSO, SELFEE or a reward model.

    Without a recipe the defaults are each paper's settings (one epoch, its schedule, warm-up and
    learning rate), with a CPU-sized batch; the model card lists every value and its source.
    """
    from selfpref.trainers.configs import load_recipe, recipe_run_keys
    from selfpref.trainers.run import train as run_train

    method = method.value
    keys = recipe_run_keys(config) if config else {}
    if config:
        load_recipe(config, method)  # unknown keys, wrong method: before any work
    dataset = dataset or keys.get("dataset")
    if not dataset:
        raise SelfprefError("no dataset: pass --dataset REF or set `dataset:` in the recipe")
    model = model or keys.get("model")
    check_output(output_dir, overwrite, flag="--output-dir")
    check_models([("--model", model), ("--reference-model", reference_model)])
    check_dataset(dataset, method)
    summary = run_train(method, dataset, output_dir, model=model,
                        reference_model=reference_model, recipe=config, push_to_hub=push_to_hub,
                        learning_rate=learning_rate, num_train_epochs=epochs, max_steps=max_steps,
                        per_device_train_batch_size=batch_size, gradient_accumulation_steps=grad_accum,
                        beta=beta, max_length=max_length, seed=seed, selfee_lambda=selfee_lambda)
    for reason, count in sorted((summary.get("dropped") or {}).items()):
        console.print(f"  dropped {count} rows before training: {reason}")
    console.print(f"trained {method} for {summary['steps']} steps in {summary['seconds']} s; "
                  f"final loss {summary['train_loss']:.4f}; model in {output_dir}",
                  markup=False, highlight=False)
