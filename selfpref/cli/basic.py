"""`selfpref version` and `selfpref ask`: the package version, one answer from a model."""

from __future__ import annotations

from typing import Optional

import typer

from selfpref import SelfprefError, __version__
from selfpref.cli.app import app, bounded, check_models, console, out


@app.command()
def version() -> None:
    """Print the selfpref version."""
    out(__version__)


@app.command()
def ask(
    question: str = typer.Argument(..., help="The user turn to answer."),
    model: Optional[str] = typer.Option(None, help="Model folder or Hub id; default: embedded SmolLM2-135M-Instruct."),
    max_new_tokens: int = typer.Option(64, callback=bounded(1), help="Most new tokens to generate."),
    temperature: float = typer.Option(0.0, callback=bounded(0), help="0 for greedy decoding."),
) -> None:
    """Answer one question with a model (the embedded default when --model is not given)."""
    from selfpref.models import load_causal_lm
    from selfpref.models.generation import generate_batch

    if not question.strip():
        raise SelfprefError("QUESTION is empty: give the question to answer, e.g. selfpref ask \"Why is the sky blue?\"")
    check_models([("--model", model)])
    lm, tok = load_causal_lm(model)
    [[answer]] = generate_batch(lm, tok, [[{"role": "user", "content": question}]],
                                max_new_tokens=max_new_tokens, temperature=temperature)
    console.print(answer, markup=False)
