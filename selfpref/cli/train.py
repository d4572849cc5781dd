"""`selfpref train METHOD`: a dataset reference -> a TRL trainer -> a model folder with its card."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperCommand

from selfpref.api.help import arg_help
from selfpref.api.train import train as api_train
from selfpref.cli.app import app, bounded, click_errors, console


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

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            opts, _, _ = self.make_parser(ctx).parse_args(args=list(args))
            ctx.meta["selfpref_train_method"] = opts.get("method")
        except click_errors.UsageError:
            pass  # the real parse below reports it
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from selfpref.trainers.defaults import DEFAULTS, defaults_table

        super().format_help(ctx, formatter)  # rich help prints now; the formatter's text follows it
        method = ctx.meta.get("selfpref_train_method")
        formatter.write("\n")
        if method in DEFAULTS:
            formatter.write(defaults_table(method) + "\n")
        else:
            formatter.write("`selfpref train METHOD --help` lists METHOD's default settings "
                            "(learning rate, schedule, warm-up, epochs, batch, beta) with their sources.\n")


@app.command(cls=TrainCommand)
def train(
    method: Method = typer.Argument(..., help=arg_help(api_train, "method")),
    dataset: Optional[str] = typer.Option(None, help=arg_help(api_train, "dataset")),
    model: Optional[str] = typer.Option(None, help=arg_help(api_train, "model")),
    output_dir: Path = typer.Option(..., "--output-dir", "-o", help=arg_help(api_train, "output_dir")),
    config: Optional[Path] = typer.Option(None, "--config", help=arg_help(api_train, "recipe")),
    reference_model: Optional[str] = typer.Option(None, help=arg_help(api_train, "reference_model")),
    learning_rate: Optional[float] = typer.Option(None, callback=bounded(0, low_open=True), help="Learning rate."),
    epochs: Optional[float] = typer.Option(None, callback=bounded(0, low_open=True), help="Number of training epochs."),
    max_steps: Optional[int] = typer.Option(None, callback=bounded(1), help="Stop after this many optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, callback=bounded(1), help="Per-device train batch size."),
    grad_accum: Optional[int] = typer.Option(None, callback=bounded(1), help="Gradient accumulation steps."),
    beta: Optional[float] = typer.Option(None, callback=bounded(0, low_open=True), help="beta of the loss (defaults: dpo 0.1, ipo 0.2, simpo 10, orpo 0.1 (lambda), sso 0.2, selfee 0.1)."),
    max_length: Optional[int] = typer.Option(None, callback=bounded(8), help="Longest prompt+answer in tokens."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    selfee_lambda: Optional[float] = typer.Option(None, callback=bounded(0), help="selfee: lambda of the extrapolated policy (Eq. 12)."),
    push_to_hub: Optional[str] = typer.Option(None, help=arg_help(api_train, "push_to_hub")),
    overwrite: bool = typer.Option(False, "--overwrite", help=arg_help(api_train, "overwrite")),
) -> None:
    """Train a model on a preference dataset with DPO, IPO, SimPO, ORPO, SSO, SELFEE or a reward model.

    Without a recipe the defaults are each paper's settings (one epoch, its schedule, warm-up and
    learning rate), with a CPU-sized batch; the model card lists every value and its source.
    """
    from selfpref.api.train import train as api_train

    api_train(method.value, dataset, output_dir, model=model, reference_model=reference_model,
              recipe=config, push_to_hub=push_to_hub, overwrite=overwrite,
              notify=lambda line: console.print(line, markup=False, highlight=False),
              learning_rate=learning_rate, epochs=epochs, max_steps=max_steps,
              batch_size=batch_size, grad_accum=grad_accum, beta=beta, max_length=max_length,
              seed=seed, selfee_lambda=selfee_lambda)
