"""`selfpref steer fit|generate`: AlignEZ directions from a dataset, and steered generation."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from selfpref.api.help import arg_help
from selfpref.api.steer import steer_fit as api_steer_fit
from selfpref.api.steer import steer_generate as api_steer_generate
from selfpref.cli.app import app, bounded, console, number_list

steer_app = typer.Typer(help="AlignEZ: steer a model with preference directions, no training.",
                        no_args_is_help=True)
app.add_typer(steer_app, name="steer")


@steer_app.command("fit")
def fit(
    dataset: str = typer.Option(..., help=arg_help(api_steer_fit, "dataset")),
    output: Path = typer.Option(..., "--output", "-o", help=arg_help(api_steer_fit, "output")),
    model: Optional[str] = typer.Option(None, help=arg_help(api_steer_fit, "model")),
    batch_size: int = typer.Option(8, callback=bounded(1), help=arg_help(api_steer_fit, "batch_size")),
    max_pairs: Optional[int] = typer.Option(None, callback=bounded(2), help=arg_help(api_steer_fit, "max_pairs")),
    max_layers: Optional[int] = typer.Option(None, callback=bounded(1), help=arg_help(api_steer_fit, "max_layers")),
    layer_rule: str = typer.Option("running-mean", help=arg_help(api_steer_fit, "layer_rule")),
    prompt_format: str = typer.Option("auto", help=arg_help(api_steer_fit, "prompt_format")),
    overwrite: bool = typer.Option(False, "--overwrite", help=arg_help(api_steer_fit, "overwrite")),
) -> None:
    """Fit theta_help / theta_harm per layer (first right-singular vectors, AlignEZ §2.2) and pick layers (A.4, CCS loss)."""
    from selfpref.api import steer_fit

    steer_fit(dataset, output, model=model, batch_size=batch_size, max_pairs=max_pairs,
              max_layers=max_layers, layer_rule=layer_rule, prompt_format=prompt_format,
              overwrite=overwrite,
              notify=lambda line: console.print(line, markup=False, highlight=False))


@steer_app.command("generate")
def generate(
    directions: Path = typer.Option(..., help=arg_help(api_steer_generate, "directions")),
    prompt: list[str] = typer.Option(..., help=arg_help(api_steer_generate, "prompts")),
    model: Optional[str] = typer.Option(None, help=arg_help(api_steer_generate, "model")),
    layers: Optional[str] = typer.Option(None, help=arg_help(api_steer_generate, "layers")),
    compare: bool = typer.Option(False, "--compare", help=arg_help(api_steer_generate, "compare")),
    max_new_tokens: int = typer.Option(64, callback=bounded(1), help=arg_help(api_steer_generate, "max_new_tokens")),
    temperature: float = typer.Option(0.0, callback=bounded(0), help=arg_help(api_steer_generate, "temperature")),
    seed: int = typer.Option(0, help=arg_help(api_steer_generate, "seed")),
    prompt_format: str = typer.Option("auto", help=arg_help(api_steer_generate, "prompt_format")),
) -> None:
    """Answer with AlignEZ's edit (remove theta_harm, add theta_help; §2.3) at every generation step."""
    from selfpref.api import steer_generate

    rows = steer_generate(directions, prompt, model=model, layers=number_list(layers, "--layers", int, "3,5,7"),
                          compare=compare, max_new_tokens=max_new_tokens, temperature=temperature,
                          seed=seed, prompt_format=prompt_format)
    for row in rows:
        console.print(Text.assemble(("Q: ", "bold"), row["prompt"]))
        if compare:
            console.print(Text.assemble(("unsteered: ", "bold"), row["unsteered"]))
        console.print(Text.assemble(("steered: ", "bold"), row["steered"]), "\n")
