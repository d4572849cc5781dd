"""`selfpref steer fit|generate`: AlignEZ directions from a dataset, and steered generation."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from selfpref.cli.app import app, bounded, console, number_list

steer_app = typer.Typer(help="AlignEZ: steer a model with preference directions, no training.",
                        no_args_is_help=True)
app.add_typer(steer_app, name="steer")


@steer_app.command("fit")
def fit(
    dataset: str = typer.Option(..., help="Preference dataset (folder, Hub id or id@version); chosen = helpful, rejected = harmful."),
    output: Path = typer.Option(..., "--output", "-o", help="Directions file to write (.safetensors)."),
    model: Optional[str] = typer.Option(None, help="Model to steer; default: the embedded SmolLM2-135M-Instruct."),
    batch_size: int = typer.Option(8, callback=bounded(1), help="Answers per forward pass."),
    max_pairs: Optional[int] = typer.Option(None, callback=bounded(2), help="Use at most this many pairs."),
    max_layers: Optional[int] = typer.Option(None, callback=bounded(1), help="Edit at most this many of the chosen layers (lowest CCS loss first); default: all that A.4 picks."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file at --output."),
) -> None:
    """Fit theta_help / theta_harm per layer (first right-singular vectors, AlignEZ §2.2) and pick layers (A.4, CCS loss)."""
    from selfpref.api import steer_fit

    steer_fit(dataset, output, model=model, batch_size=batch_size, max_pairs=max_pairs,
              max_layers=max_layers, overwrite=overwrite,
              notify=lambda line: console.print(line, markup=False, highlight=False))


@steer_app.command("generate")
def generate(
    directions: Path = typer.Option(..., help="Directions file from `selfpref steer fit`."),
    prompt: list[str] = typer.Option(..., help="The user turn to answer (repeatable)."),
    model: Optional[str] = typer.Option(None, help="The model the directions were fit on; default: the embedded one."),
    layers: Optional[str] = typer.Option(None, help="Edit these layers instead of the fitted choice, e.g. 3,5,7."),
    compare: bool = typer.Option(False, "--compare", help="Also print the unsteered answer."),
    max_new_tokens: int = typer.Option(64, callback=bounded(1), help="Most new tokens to generate."),
    temperature: float = typer.Option(0.0, callback=bounded(0), help="0 for greedy decoding."),
    seed: int = typer.Option(0, help="Sampling seed."),
) -> None:
    """Answer with AlignEZ's edit (remove theta_harm, add theta_help; §2.3) at every generation step."""
    from selfpref.api import steer_generate

    rows = steer_generate(directions, prompt, model=model, layers=number_list(layers, "--layers", int, "3,5,7"),
                          compare=compare, max_new_tokens=max_new_tokens, temperature=temperature,
                          seed=seed)
    for row in rows:
        console.print(Text.assemble(("Q: ", "bold"), row["prompt"]))
        if compare:
            console.print(Text.assemble(("unsteered: ", "bold"), row["unsteered"]))
        console.print(Text.assemble(("steered: ", "bold"), row["steered"]), "\n")
